/**
 * The ctlab side of a kernel comparison: replay a (re-framed) capture through
 * the library with frozen-clock semantics — every packet at one instant, as
 * the kernel sees a capture injected within milliseconds — and collect the
 * same observations the kernel run yields.
 */
import { EventLineSink } from "../../src/conntrack/events.js";
import { CT_DROPPED, Tracker } from "../../src/conntrack/tracker.js";
import { CT_STATE } from "../../src/conntrack/constants.js";
import { ipToWords } from "../../src/packet/addr.js";
import { forEachPacketSync } from "../../src/packet/source.js";
import type { PacketView } from "../../src/packet/view.js";
import type { Observed } from "./compare.js";
import { parseEventLine } from "./compare.js";
import type { CounterGroup, CtStateName, GlobalLimits } from "./netns.js";
import { zeroStates } from "./netns.js";

export interface CtlabRunOptions {
  /** Counter groups, matched on the packet's source address as nft does. */
  groups?: readonly CounterGroup[];
  /** Sysctls beyond the comparison defaults (nf_conntrack_checksum=0). */
  sysctls?: Readonly<Record<string, number>>;
  /** nf_conntrack_max and hash size, as the kernel run had them. */
  globalLimits?: GlobalLimits;
  /** Hash seed (default: random, like the kernel's per-boot seed). */
  seed?: number;
  /**
   * "frozen" (default): every packet at the first packet's time, as the
   * kernel sees a capture injected within milliseconds. "capture": time
   * follows the capture's timestamps (for a real-time kernel replay).
   */
  clock?: "frozen" | "capture";
  /**
   * How a transport checksum with the transmit-offload signature is read
   * (TrackerOptions.offloadedChecksums). Default "wire": the file is exactly
   * what the router received from tcpreplay (CHECKSUM_NONE there), so such a
   * checksum is simply wrong, as the kernel finds it.
   */
  offloadedChecksums?: "sender" | "wire";
}

export interface CtlabRun extends Observed {
  /** Packets conntrack itself dropped (table full …): they never reach the nft chain. */
  dropped: number;
  /** The tracker, for tests that look further. */
  tracker: Tracker;
}

interface Prefix {
  family: 4 | 6;
  words: Uint32Array;
  bits: number;
  group: string;
}

function parsePrefix(text: string, group: string): Prefix {
  const [addr = "", len = ""] = text.split("/");
  const words = new Uint32Array(4);
  const family = ipToWords(addr, words);
  const bits = len === "" ? (family === 4 ? 32 : 128) : Number(len);
  return { family, words, bits, group };
}

function matches(p: Prefix, family: number, addr: Uint32Array): boolean {
  if (p.family !== family) return false;
  let left = p.bits;
  for (let i = 0; i < 4 && left > 0; i++) {
    const take = Math.min(32, left);
    const mask = take === 32 ? 0xffffffff : ~(0xffffffff >>> take) >>> 0;
    if ((((addr[i] as number) ^ (p.words[i] as number)) & mask) !== 0) return false;
    left -= take;
  }
  return true;
}

function stateName(bit: number): CtStateName | undefined {
  switch (bit) {
    case CT_STATE.NEW:
      return "new";
    case CT_STATE.ESTABLISHED:
      return "established";
    case CT_STATE.RELATED:
      return "related";
    case CT_STATE.INVALID:
      return "invalid";
    case CT_STATE.UNTRACKED:
      return "untracked";
    default:
      return undefined;
  }
}

/** Replays `pcapPath` through a fresh Tracker and returns what a kernel run would show. */
export function runCtlab(pcapPath: string, opts: CtlabRunOptions = {}): CtlabRun {
  const sink = new EventLineSink({ extended: true });
  const sysctls: Record<string, number> = { nf_conntrack_checksum: 0, ...(opts.sysctls ?? {}) };
  if (opts.globalLimits !== undefined) {
    sysctls["nf_conntrack_max"] = opts.globalLimits.max;
    sysctls["nf_conntrack_buckets"] = opts.globalLimits.hashsize;
  }
  let nowMs = 0;
  const capture = opts.clock === "capture";
  const tracker = new Tracker({
    sysctls,
    events: sink,
    ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
    ...(capture ? { clock: { now: () => nowMs } } : {}),
    offloadedChecksums: opts.offloadedChecksums ?? "wire",
  });
  const prefixes: Prefix[] = [];
  for (const g of opts.groups ?? []) {
    for (const p of [...g.v4, ...g.v6]) prefixes.push(parsePrefix(p, g.name));
  }
  const ctState = zeroStates();
  const groups = new Map<string, Record<CtStateName, number>>();
  let dropped = 0;
  let started = false;
  const handler = (v: PacketView): void => {
    nowMs = v.tsSec * 1000 + v.tsNsec / 1e6;
    // Frozen clock: time is set once, at the first packet, and never moves.
    if (!started && !capture) {
      tracker.advance(nowMs);
      started = true;
    }
    const s = tracker.process(v);
    if (s === CT_DROPPED) {
      dropped++;
      return;
    }
    const name = stateName(s);
    if (name === undefined) return;
    ctState[name]++;
    // nft's chain jumps on the first matching prefix; groups are disjoint anyway.
    for (const p of prefixes) {
      if (matches(p, v.family, v.src)) {
        let g = groups.get(p.group);
        if (g === undefined) {
          g = zeroStates();
          groups.set(p.group, g);
        }
        g[name]++;
        break;
      }
    }
  };
  const summary = forEachPacketSync(pcapPath, handler);
  if (summary.error !== null) throw summary.error;
  const stats: Record<string, number> = {};
  for (const [k, v] of tracker.stats.entries()) stats[k] = v;
  return {
    table: tracker.formatTable({ extended: true }),
    events: sink.lines.map((l) => parseEventLine(l)),
    stats,
    count: tracker.count,
    ctState,
    groups,
    dropped,
    tracker,
  };
}
