/**
 * `replay --threads N`: the table in N parts, one per worker thread, as the
 * kernel spreads flows over CPUs. This thread reads, decodes and reassembles
 * (once), picks each packet's worker by a hash of its flow that is the same
 * in both directions (the inner packet's flow for ICMP errors), and hands
 * packets over in batches through a SharedArrayBuffer ring per worker: no
 * message per packet, only Atomics on the batch counters.
 *
 * Identical to a single-threaded replay (`conntrack -L` output, packet and
 * table counters, peak) for a capture that never fills the table and uses no
 * NAT or helpers, because then an entry's whole life depends only on its own
 * flow's packets and on time: every worker runs its clock on the capture's
 * timestamps and ends at the capture's last packet; the bucket of an entry
 * is the same in every part (same seed, same bucket count), and within a
 * bucket entries are merged newest-confirmed first, the order of the
 * kernel's chains; the peak is rebuilt from each part's timeline (entries
 * created and killed by packet, expired by jiffy). What differs: each part
 * has nf_conntrack_max / N entries of its own (table-full, early drop and
 * the GC's eviction are per part), the census at the peak is the final
 * table's, `memory.ctlab_bytes` counts every part's arrays (a bucket array
 * each); events, rules and helpers need one thread.
 *
 * Ring layout (one SharedArrayBuffer per worker): Int32 control cells
 * (batches written, batches read, done), the capture's last clock as a
 * Float64, then `slots` batch slots of { Int32 count, pad, Float64 cells
 * per packet (frame position, length, packet number, clock, the view),
 * frame bytes }.
 */
import { Worker } from "node:worker_threads";
import { Census } from "../conntrack/census.js";
import type { CensusReader, CensusTuple } from "../conntrack/census.js";
import { MS_PER_JIFFY } from "../conntrack/jiffies.js";
import { resolveSysctls } from "../conntrack/sysctl.js";
import type { SysctlValues } from "../conntrack/sysctl.js";
import { forEachPacket } from "../packet/source.js";
import type { PacketView } from "../packet/view.js";
import { ReaderCounts } from "./reader-counts.js";
import { buildSummary } from "./replay.js";
import type { ReplayOptions, SummaryTable } from "./replay.js";
import type { ReplaySummary } from "../report/summary.js";
import type { SourceSummary } from "../packet/source.js";
import { VIEW_CELLS, writeView } from "./wire.js";

/** Control cells (Int32) at the start of a ring. */
export const CTRL = { WRITTEN: 0, READ: 1, DONE: 2, CELLS: 4 } as const;
/** Ring geometry: bytes before the first slot, and the cells of a packet record before its view. */
export const RING = { HEADER: 32, AT: 0, LEN: 1, IDX: 2, CLOCK: 3, VIEW: 4 } as const;

/** What a worker is started with. */
export interface WorkerInit {
  sab: SharedArrayBuffer;
  slots: number;
  batch: number;
  cells: number;
  bytesPerSlot: number;
  slotBytes: number;
  sysctls: Record<string, number | string>;
  seed: number;
  lines: boolean;
}

/** What a worker reports at the end. */
export interface WorkerResult {
  counts: { new: number; established: number; related: number; invalid: number; untracked: number; dropped: number };
  stats: [string, number][];
  reasons: Record<string, number>;
  checksumOffloaded: number;
  memoryBytes: number;
  entries: number;
  bucket: Float64Array;
  order: Float64Array;
  /** Per entry: family + proto·256 + state index·65536, status, timeout seconds, dport + sport·65536. */
  meta: Float64Array;
  /** Per entry: the ORIGINAL source and destination words. */
  addr: Uint32Array;
  states: string[];
  lines: string[];
  created: Float64Array;
  createdMs: Float64Array;
  killed: Float64Array;
  /** Packets that allocated an entry and freed it unconfirmed, and their clocks. */
  transient: Float64Array;
  transientMs: Float64Array;
  expiredJ: Float64Array;
  log: { idx: number; time: number; line: string }[];
}

/** Packets per batch, frame bytes per batch slot, slots per ring. */
const BATCH = 2048;
const SLOT_FRAME_BYTES = 4 << 20;
const SLOTS = 4;

function mix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function endpoint(a: ArrayLike<number>, port: number): number {
  let h = mix((a[0] as number) ^ 0x9e3779b9);
  h = mix(h ^ (a[1] as number));
  h = mix(h ^ (a[2] as number));
  h = mix(h ^ (a[3] as number));
  return mix(h ^ port);
}

/** Protocols whose tuple has ports (both directions swap them). */
function hasPorts(proto: number): boolean {
  return proto === 6 || proto === 17 || proto === 136 || proto === 132 || proto === 33;
}

/**
 * A hash of the packet's flow, the same for both directions: the two
 * endpoints (address and port; ICMP echo's id) combined in an order-free
 * way, with the protocol. ICMP errors hash their inner packet, whose entry
 * they belong to; GRE hashes addresses only (PPTP keys differ per direction).
 */
export function flowHash(v: PacketView): number {
  let proto = v.proto;
  let a: ArrayLike<number> = v.src;
  let b: ArrayLike<number> = v.dst;
  let pa = 0;
  let pb = 0;
  if ((proto === 1 || proto === 58) && v.innerOk) {
    proto = v.innerProto;
    a = v.innerSrc;
    b = v.innerDst;
    if (hasPorts(proto)) {
      pa = v.innerSport;
      pb = v.innerDport;
    } else if (proto === 1 || proto === 58) {
      pa = pb = v.innerIcmpId;
    }
  } else if (hasPorts(proto)) {
    pa = v.sport;
    pb = v.dport;
  } else if (proto === 1 || proto === 58) {
    pa = pb = v.icmpId;
  }
  const x = endpoint(a, pa);
  const y = endpoint(b, pb);
  return mix((x < y ? x : y) ^ mix((x < y ? y : x) ^ proto));
}

/** A merged entry as the summary's walk reads it. */
class MergedReader implements CensusReader {
  family: 4 | 6 = 4;
  proto = 0;
  stateName = "";
  status = 0;
  timeoutSeconds = 0;
  readonly t = { s0: 0, s1: 0, s2: 0, s3: 0, d0: 0, d1: 0, d2: 0, d3: 0, sport: 0, dport: 0 };
  tuple(_dir: 0 | 1): CensusTuple {
    return this.t;
  }
  at(r: WorkerResult, i: number): this {
    const m = r.meta;
    const m0 = m[i * 4] as number;
    this.family = (m0 & 0xff) as 4 | 6;
    this.proto = (m0 >>> 8) & 0xff;
    this.stateName = r.states[m0 >>> 16] ?? "";
    this.status = m[i * 4 + 1] as number;
    this.timeoutSeconds = m[i * 4 + 2] as number;
    const p = m[i * 4 + 3] as number;
    this.t.dport = p & 0xffff;
    this.t.sport = Math.floor(p / 65536);
    const a = r.addr;
    const o = i * 8;
    const t = this.t;
    t.s0 = a[o] as number;
    t.s1 = a[o + 1] as number;
    t.s2 = a[o + 2] as number;
    t.s3 = a[o + 3] as number;
    t.d0 = a[o + 4] as number;
    t.d1 = a[o + 5] as number;
    t.d2 = a[o + 6] as number;
    t.d3 = a[o + 7] as number;
    return this;
  }
}

/**
 * The parts' live entries in one `conntrack -L` order: bucket by bucket, and
 * within a bucket the most recently confirmed first (each part's list is
 * already in that order).
 */
export function mergeOrder(parts: readonly WorkerResult[], cb: (part: number, index: number) => void): void {
  const pos = parts.map(() => 0);
  for (;;) {
    let best = -1;
    let bb = 0;
    let bo = 0;
    for (let k = 0; k < parts.length; k++) {
      const r = parts[k] as WorkerResult;
      const i = pos[k] as number;
      if (i >= r.entries) continue;
      const b = r.bucket[i] as number;
      const o = r.order[i] as number;
      if (best < 0 || b < bb || (b === bb && o > bo)) {
        best = k;
        bb = b;
        bo = o;
      }
    }
    if (best < 0) return;
    cb(best, pos[best] as number);
    pos[best] = (pos[best] as number) + 1;
  }
}

/**
 * The table's peak from the parts' timelines: after packet i the table holds
 * the entries created up to i, less those killed up to i and those whose
 * deadline jiffy is at or before i's (a single tracker expires them before
 * handling i). `afterPacket` is the highest count after a packet (and the
 * clock of the first packet that reached it); `allocated` also counts an
 * entry a packet allocated and freed unconfirmed, as the tracker's own peak does.
 */
export function peakOf(parts: readonly WorkerResult[]): { afterPacket: number; timeMs: number; allocated: number } {
  const points: Array<[number, number, number]> = [];
  for (const r of parts) {
    for (let i = 0; i < r.created.length; i++) points.push([r.created[i] as number, r.createdMs[i] as number, 0]);
    const t = r.transient;
    for (let i = 0; i < t.length; i++) points.push([t[i] as number, r.transientMs[i] as number, 1]);
  }
  points.sort((a, b) => a[0] - b[0] || a[2] - b[2]);
  const killed = Float64Array.from(parts.flatMap((r) => Array.from(r.killed))).sort();
  const expired = Float64Array.from(parts.flatMap((r) => Array.from(r.expiredJ))).sort();
  let k = 0;
  let x = 0;
  let made = 0;
  let afterPacket = 0;
  let allocated = 0;
  let timeMs = Number.NaN;
  for (const [idx, ms, kind] of points) {
    while (k < killed.length && (killed[k] as number) <= idx) k++;
    const j = Math.floor(ms / MS_PER_JIFFY);
    while (x < expired.length && (expired[x] as number) <= j) x++;
    if (kind === 0) made++;
    const c = made - k - x + kind;
    if (c > allocated) allocated = c;
    if (kind === 0 && c > afterPacket) {
      afterPacket = c;
      timeMs = ms;
    }
  }
  return { afterPacket, timeMs, allocated };
}

/** The result of a threaded replay: the summary and, when asked for, the table as `conntrack -L -o extended` lines. */
export interface ThreadedRun {
  summary: ReplaySummary;
  source: SourceSummary;
  table: string[];
  threads: number;
}

/**
 * Replays a capture over `threads` worker threads (see the module comment).
 * @throws Error for options a threaded replay cannot honour (events, rules), SysctlError for bad sysctls
 */
export async function replayThreaded(
  input: string | NodeJS.ReadableStream | AsyncIterable<Uint8Array> | Uint8Array,
  opts: ReplayOptions & { table?: boolean },
  threads: number,
): Promise<ThreadedRun> {
  if (opts.firewall !== undefined && opts.firewall !== null) throw new Error("A threaded replay cannot run a ruleset: use one thread");
  if (opts.onEvent !== undefined && opts.onEvent !== null) throw new Error("A threaded replay cannot write events: use one thread");
  const sysctl: SysctlValues = resolveSysctls(opts.sysctls ?? {});
  const seed = (opts.seed ?? crypto.getRandomValues(new Uint32Array(1))[0] ?? 0) >>> 0;
  const max = sysctl.nf_conntrack_max;
  const partSysctls: Record<string, number | string> = {
    ...(opts.sysctls ?? {}),
    nf_conntrack_max: max === 0 ? 0 : Math.max(1, Math.ceil(max / threads)),
    nf_conntrack_buckets: sysctl.nf_conntrack_buckets,
    // The parts' timelines come from their events.
    nf_conntrack_events: 1,
  };
  const cells = RING.VIEW + VIEW_CELLS;
  const bytesPerSlot = SLOT_FRAME_BYTES;
  const slotBytes = 8 + BATCH * cells * 8 + bytesPerSlot;
  const rings = Array.from({ length: threads }, () => new SharedArrayBuffer(RING.HEADER + SLOTS * slotBytes));
  const workers = rings.map(
    (sab) =>
      new Worker(new URL("./thread-worker.js", import.meta.url), {
        workerData: {
          sab,
          slots: SLOTS,
          batch: BATCH,
          cells,
          bytesPerSlot,
          slotBytes,
          sysctls: partSysctls,
          seed,
          lines: opts.table === true,
        } satisfies WorkerInit,
      }),
  );
  const results = workers.map(
    (w) =>
      new Promise<WorkerResult>((resolve, reject) => {
        w.once("message", (m: WorkerResult) => resolve(m));
        w.once("error", reject);
        w.once("exit", (code) => {
          if (code !== 0) reject(new Error(`Replay worker exited with code ${code}`));
        });
      }),
  );
  // Surfaced by the await below; a worker failing early must not be an unhandled rejection meanwhile.
  for (const r of results) r.catch(() => {});

  const ctrls = rings.map((sab) => new Int32Array(sab, 0, CTRL.CELLS));
  const heads = rings.map((sab) => Array.from({ length: SLOTS }, (_, s) => new Int32Array(sab, RING.HEADER + s * slotBytes, 2)));
  const fs = rings.map((sab) => Array.from({ length: SLOTS }, (_, s) => new Float64Array(sab, RING.HEADER + s * slotBytes + 8, BATCH * cells)));
  const bs = rings.map((sab) =>
    Array.from({ length: SLOTS }, (_, s) => new Uint8Array(sab, RING.HEADER + s * slotBytes + 8 + BATCH * cells * 8, bytesPerSlot)),
  );
  const written = rings.map(() => 0);
  const fill = rings.map(() => 0);
  const used = rings.map(() => 0);

  const flush = (k: number): void => {
    const ctrl = ctrls[k] as Int32Array;
    const w = written[k] as number;
    ((heads[k] as Int32Array[])[w % SLOTS] as Int32Array)[0] = fill[k] as number;
    written[k] = w + 1;
    Atomics.store(ctrl, CTRL.WRITTEN, w + 1);
    Atomics.notify(ctrl, CTRL.WRITTEN);
    fill[k] = 0;
    used[k] = 0;
  };
  /** Waits until slot `written % SLOTS` of ring k is free (the worker has read it). */
  const waitFree = (k: number): void => {
    const ctrl = ctrls[k] as Int32Array;
    for (;;) {
      const r = Atomics.load(ctrl, CTRL.READ);
      if ((written[k] as number) - r < SLOTS) return;
      Atomics.wait(ctrl, CTRL.READ, r, 1000);
    }
  };

  const frozen = opts.clock === "frozen";
  let clockMs = Number.NaN;
  let clockStarted = false;
  let tracked = 0;
  const rc = new ReaderCounts(opts.onProgress ?? null, opts.progressEvery ?? 65536);
  const started = performance.now();

  const handler = (view: PacketView): void => {
    if (!rc.admit(view)) return;
    if (!frozen || !clockStarted) {
      clockStarted = true;
      clockMs = view.tsSec * 1000 + Math.floor(view.tsNsec / 1e6);
    }
    const k = flowHash(view) % threads;
    const len = view.capLen;
    if (len > bytesPerSlot) throw new Error(`Record ${view.index} is too large for a threaded replay: ${len} bytes`);
    if ((fill[k] as number) === BATCH || (used[k] as number) + len > bytesPerSlot) flush(k);
    if ((fill[k] as number) === 0) waitFree(k);
    const slot = (written[k] as number) % SLOTS;
    const f = (fs[k] as Float64Array[])[slot] as Float64Array;
    const b = (bs[k] as Uint8Array[])[slot] as Uint8Array;
    const o = (fill[k] as number) * cells;
    const at = used[k] as number;
    b.set(view.data.subarray(view.frameOff, view.frameOff + len), at);
    f[o + RING.AT] = at;
    f[o + RING.LEN] = len;
    f[o + RING.IDX] = tracked;
    f[o + RING.CLOCK] = clockMs;
    writeView(view, f, o + RING.VIEW);
    fill[k] = (fill[k] as number) + 1;
    used[k] = at + len;
    tracked++;
  };

  let source: SourceSummary;
  try {
    opts.onStart?.(() => ({ packets: rc.total, bytes: rc.bytes, entries: 0, max }));
    source = await forEachPacket(input as string, handler, { defrag: opts.defrag !== false, ...(opts.name !== undefined ? { name: opts.name } : {}) });
  } finally {
    for (let k = 0; k < threads; k++) {
      if ((fill[k] as number) > 0) {
        waitFree(k);
        flush(k);
      }
      new Float64Array(rings[k] as SharedArrayBuffer, CTRL.CELLS * 4, 1)[0] = clockMs;
      Atomics.store(ctrls[k] as Int32Array, CTRL.DONE, 1);
      Atomics.notify(ctrls[k] as Int32Array, CTRL.WRITTEN);
    }
  }
  const parts = await Promise.all(results);
  await Promise.all(workers.map((w) => w.terminate()));
  const elapsed = performance.now() - started;

  const sum = (f: (r: WorkerResult) => number): number => parts.reduce((n, r) => n + f(r), 0);
  const statNames = (parts[0] as WorkerResult).stats.map(([k]) => k);
  const statSums = new Map<string, number>(statNames.map((k) => [k, 0]));
  const reasons: Record<string, number> = {};
  for (const r of parts) {
    for (const [k, v] of r.stats) statSums.set(k, (statSums.get(k) ?? 0) + v);
    for (const [k, v] of Object.entries(r.reasons)) reasons[k] = (reasons[k] ?? 0) + v;
  }
  const count = sum((r) => r.entries);
  const { afterPacket, timeMs, allocated } = peakOf(parts);
  const reader = new MergedReader();
  const table: string[] = [];
  const merged: SummaryTable = {
    count,
    peak: allocated,
    memoryBytes: sum((r) => r.memoryBytes),
    sysctl,
    stats: { entries: () => [...statSums], reasons: () => reasons, checksumOffloaded: sum((r) => r.checksumOffloaded) },
    forEachEntry: (cb) => mergeOrder(parts, (k, i) => cb(reader.at(parts[k] as WorkerResult, i))),
  };
  if (opts.table === true) mergeOrder(parts, (k, i) => table.push((parts[k] as WorkerResult).lines[i] as string));
  const log = parts
    .flatMap((r) => r.log)
    .sort((a, b) => a.idx - b.idx)
    .slice(0, 10000)
    .map(({ time, line }) => ({ time, line }));
  const censusTop = opts.census?.top ?? null;
  const summary = buildSummary(input, opts, source, merged, {
    total: rc.total,
    tracked,
    newP: sum((r) => r.counts.new),
    est: sum((r) => r.counts.established),
    rel: sum((r) => r.counts.related),
    inv: sum((r) => r.counts.invalid),
    untr: sum((r) => r.counts.untracked),
    dropped: sum((r) => r.counts.dropped),
    nonIp: rc.nonIp,
    backwards: rc.backwards,
    peak: afterPacket,
    peakTime: timeMs === timeMs ? timeMs / 1000 : null,
    unsupportedLinks: rc.unsupportedLinks,
    log,
    elapsed,
    interrupted: opts.signal?.aborted === true,
    census: censusTop !== null ? new Census() : null,
    censusTop,
    peakCensus: null,
    peakPending: false,
  });
  return { summary, source, table, threads };
}
