/**
 * Comparing what the kernel made of a capture with what ctlab makes of it.
 *
 * Both sides are reduced to the same normal form before comparing:
 * - final table: one record per entry keyed by its original tuple; state,
 *   reply tuple, [UNREPLIED]/[ASSURED] and every other attribute exact;
 *   `use=` and `id=` ignored; the timeout equal within TIMEOUT_SLACK seconds
 *   (the kernel's counts down while we read, ctlab's clock is frozen);
 * - events: per flow (original tuple), the sequence of (kind, state, flags,
 *   timeout ± slack) in order; the interleaving of flows is not compared;
 * - packets per `ct state` (new/established/related/invalid/untracked), in
 *   total and per counter group;
 * - the `conntrack -S` counters and `conntrack -C`.
 */
import type { CtStateName } from "./netns.js";
import { CT_STATES } from "./netns.js";

/** Seconds two timeouts may differ by. */
export const TIMEOUT_SLACK = 3;

/** One `conntrack -L -o extended` / `-E -o extended` line, taken apart. */
export interface CtLine {
  l3: string;
  proto: string;
  timeout: number | undefined;
  /** Protocol state (TCP, SCTP …) or "" when the line has none. */
  state: string;
  /** Original tuple, normalised text (e.g. "src=… dst=… sport=… dport=…"). */
  orig: string;
  reply: string;
  unreplied: boolean;
  assured: boolean;
  /** Other attributes (mark=…, zone=…, [OFFLOAD] …) in order, minus use=/id=. */
  extra: string[];
  /** The flow key: l3, protocol and original tuple. */
  key: string;
  raw: string;
}

const TUPLE_KEYS = new Set(["src", "dst", "sport", "dport", "type", "code", "id", "srckey", "dstkey"]);

/** Parses a table or event line (without the `[KIND]` prefix and the conntrack id). */
export function parseCtLine(raw: string): CtLine {
  const tok = raw.trim().split(/\s+/);
  let i = 0;
  const l3 = tok[i++] ?? "";
  i++; // l3 number
  const proto = tok[i++] ?? "";
  i++; // l4 number
  let timeout: number | undefined;
  if (/^\d+$/.test(tok[i] ?? "")) timeout = Number(tok[i++]);
  let state = "";
  const t = tok[i] ?? "";
  if (/^[A-Z_0-9]+$/.test(t)) {
    state = t;
    i++;
  }
  const orig: string[] = [];
  const reply: string[] = [];
  const extra: string[] = [];
  let unreplied = false;
  let assured = false;
  // Tuple fields run from the first src= to just before the second src=, then
  // the reply tuple; attributes after the reply tuple are extras.
  let part = 0;
  for (; i < tok.length; i++) {
    const x = tok[i] as string;
    if (x === "[UNREPLIED]") {
      unreplied = true;
      continue;
    }
    if (x === "[ASSURED]") {
      assured = true;
      continue;
    }
    const eq = x.indexOf("=");
    const k = eq > 0 ? x.slice(0, eq) : "";
    if (k === "src") part++;
    if (k === "use") continue;
    if (part === 1 && TUPLE_KEYS.has(k)) orig.push(x);
    else if (part === 2 && TUPLE_KEYS.has(k) && !(k === "id" && reply.some((r) => r.startsWith("id=")))) reply.push(x);
    else extra.push(x);
  }
  const o = orig.join(" ");
  return {
    l3,
    proto,
    timeout,
    state,
    orig: o,
    reply: reply.join(" "),
    unreplied,
    assured,
    extra,
    key: `${l3} ${proto} ${o}`,
    raw: raw.trim(),
  };
}

export type EventKind = "NEW" | "UPDATE" | "DESTROY";

export interface CtEvent {
  kind: EventKind;
  line: CtLine;
}

/**
 * Parses a ctlab/`conntrack -E` event line: optional `[ts]\t`, `[KIND]`, body.
 * The body must not carry a conntrack id (`-o id`): an ICMP tuple ends in
 * `id=` too, so a trailing id cannot be told apart here.
 */
export function parseEventLine(text: string): CtEvent {
  const m = /^(?:\[\d+\.\d+\]\s+)?\[(NEW|UPDATE|DESTROY)\]\s+(.*?)\s*$/.exec(text.trim());
  if (m === null) throw new Error(`Unparsable event line: "${text}"`);
  return { kind: m[1] as EventKind, line: parseCtLine(m[2] ?? "") };
}

/** Everything compared, from one side. */
export interface Observed {
  /** `conntrack -L -o extended` lines (use=/id= may be present; they are ignored). */
  table: string[];
  /** Events as [KIND] + extended body, in delivery order. */
  events: CtEvent[];
  /** `conntrack -S` summed. */
  stats: Record<string, number>;
  /** `conntrack -C`. */
  count: number;
  /** Packets per ct state. */
  ctState: Record<CtStateName, number>;
  /** Packets per ct state per counter group. */
  groups: Map<string, Record<CtStateName, number>>;
  /**
   * Kernel side: seconds from the first injected frame to the table read.
   * ctlab's frozen clock reads every timeout at its full value; the kernel's
   * entries count down while the rest of the capture is injected and the
   * events drain, so on a loaded machine a large capture's early entries are
   * that much older. The table comparison lets the kernel's timeout be lower
   * by up to this much (never higher).
   */
  agedSec?: number;
}

export interface Difference {
  /** What differs. */
  aspect: "table" | "events" | "ct-state" | "stats" | "count";
  /** Counter group (scenario) the difference belongs to, when known. */
  group: string | undefined;
  /** Flow key, when the difference is about one flow. */
  flow: string | undefined;
  message: string;
}

export interface Comparison {
  identical: boolean;
  differences: Difference[];
  /** Flow keys seen on either side (table or events). */
  flows: number;
}

/** Assigns a flow (by its key) to a counter group; undefined when unknown. */
export type GroupOf = (line: CtLine) => string | undefined;

/** `a` is the kernel's timeout, `b` ctlab's; `aged`: how much older the kernel's entries may be. */
function timeoutsClose(a: number | undefined, b: number | undefined, aged = 0): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a - b <= TIMEOUT_SLACK && b - a <= TIMEOUT_SLACK + aged;
}

function describeLine(l: CtLine): string {
  return l.raw;
}

/** Compares two table lines of the same flow; returns what differs, or "". */
function lineDiff(k: CtLine, c: CtLine, withTimeout: boolean, aged = 0): string {
  const parts: string[] = [];
  if (k.state !== c.state) parts.push(`state "${k.state}" vs "${c.state}"`);
  if (k.reply !== c.reply) parts.push(`reply tuple "${k.reply}" vs "${c.reply}"`);
  if (k.unreplied !== c.unreplied) parts.push(`[UNREPLIED] ${String(k.unreplied)} vs ${String(c.unreplied)}`);
  if (k.assured !== c.assured) parts.push(`[ASSURED] ${String(k.assured)} vs ${String(c.assured)}`);
  if (withTimeout && !timeoutsClose(k.timeout, c.timeout, aged)) {
    parts.push(`timeout "${String(k.timeout)}" vs "${String(c.timeout)}"`);
  }
  const ke = k.extra.join(" ");
  const ce = c.extra.join(" ");
  if (ke !== ce) parts.push(`attributes "${ke}" vs "${ce}"`);
  return parts.join(", ");
}

function eventText(e: CtEvent): string {
  return `[${e.kind}] ${e.line.raw}`;
}

/**
 * Compares kernel (`k`) and ctlab (`c`) observations. Differences name the
 * flow and the first differing event.
 */
export function compareObserved(k: Observed, c: Observed, groupOf: GroupOf = () => undefined): Comparison {
  const diffs: Difference[] = [];
  const flows = new Set<string>();

  // ---- tables
  const kt = new Map<string, CtLine[]>();
  const ct = new Map<string, CtLine[]>();
  for (const [lines, into] of [
    [k.table, kt],
    [c.table, ct],
  ] as const) {
    for (const raw of lines) {
      const l = parseCtLine(raw);
      flows.add(l.key);
      const list = into.get(l.key) ?? [];
      list.push(l);
      into.set(l.key, list);
    }
  }
  for (const key of new Set([...kt.keys(), ...ct.keys()])) {
    const a = kt.get(key) ?? [];
    const b = ct.get(key) ?? [];
    const any = (a[0] ?? b[0]) as CtLine;
    const group = groupOf(any);
    if (a.length !== b.length) {
      diffs.push({
        aspect: "table",
        group,
        flow: key,
        message:
          a.length === 0
            ? `only ctlab has the entry: ${describeLine(b[0] as CtLine)}`
            : b.length === 0
              ? `only the kernel has the entry: ${describeLine(a[0] as CtLine)}`
              : `entry count ${a.length} vs ${b.length}`,
      });
      continue;
    }
    for (let i = 0; i < a.length; i++) {
      const d = lineDiff(a[i] as CtLine, b[i] as CtLine, true, Math.ceil(k.agedSec ?? 0));
      if (d !== "") {
        diffs.push({
          aspect: "table",
          group,
          flow: key,
          message: `${d}\n      kernel: ${describeLine(a[i] as CtLine)}\n      ctlab:  ${describeLine(b[i] as CtLine)}`,
        });
      }
    }
  }

  // ---- events, per flow
  const ke = groupEvents(k.events);
  const ce = groupEvents(c.events);
  for (const key of new Set([...ke.keys(), ...ce.keys()])) {
    flows.add(key);
    const a = ke.get(key) ?? [];
    const b = ce.get(key) ?? [];
    const group = groupOf(((a[0] ?? b[0]) as CtEvent).line);
    const n = Math.max(a.length, b.length);
    for (let i = 0; i < n; i++) {
      const x = a[i];
      const y = b[i];
      let d = "";
      if (x === undefined || y === undefined) d = "missing";
      else if (x.kind !== y.kind) d = `kind ${x.kind} vs ${y.kind}`;
      else d = lineDiff(x.line, y.line, true);
      if (d !== "") {
        diffs.push({
          aspect: "events",
          group,
          flow: key,
          message:
            `event #${i + 1} of ${a.length}/${b.length} differs${d === "missing" ? "" : `: ${d}`}\n` +
            `      kernel: ${x === undefined ? "(none)" : eventText(x)}\n` +
            `      ctlab:  ${y === undefined ? "(none)" : eventText(y)}`,
        });
        break;
      }
    }
  }

  // ---- packets per ct state
  const stateDiff = (a: Record<CtStateName, number>, b: Record<CtStateName, number>): string =>
    CT_STATES.filter((s) => a[s] !== b[s])
      .map((s) => `${s} ${a[s]} vs ${b[s]}`)
      .join(", ");
  const sd = stateDiff(k.ctState, c.ctState);
  if (sd !== "") diffs.push({ aspect: "ct-state", group: undefined, flow: undefined, message: `packets per ct state: ${sd}` });
  for (const g of new Set([...k.groups.keys(), ...c.groups.keys()])) {
    const zero = { new: 0, established: 0, related: 0, invalid: 0, untracked: 0 };
    const d = stateDiff(k.groups.get(g) ?? zero, c.groups.get(g) ?? zero);
    if (d !== "") diffs.push({ aspect: "ct-state", group: g, flow: undefined, message: `packets per ct state: ${d}` });
  }

  // ---- conntrack -S / -C
  for (const name of new Set([...Object.keys(k.stats), ...Object.keys(c.stats)])) {
    const a = k.stats[name] ?? 0;
    const b = c.stats[name] ?? 0;
    if (a !== b) diffs.push({ aspect: "stats", group: undefined, flow: undefined, message: `conntrack -S ${name}=${a} vs ${b}` });
  }
  if (k.count !== c.count) {
    diffs.push({ aspect: "count", group: undefined, flow: undefined, message: `conntrack -C ${k.count} vs ${c.count}` });
  }
  return { identical: diffs.length === 0, differences: diffs, flows: flows.size };
}

function groupEvents(events: readonly CtEvent[]): Map<string, CtEvent[]> {
  const m = new Map<string, CtEvent[]>();
  for (const e of events) {
    const list = m.get(e.line.key) ?? [];
    list.push(e);
    m.set(e.line.key, list);
  }
  return m;
}

/** Renders differences for a test log. */
export function formatDifferences(diffs: readonly Difference[], limit = 20): string {
  const out: string[] = [];
  for (const d of diffs.slice(0, limit)) {
    const where = [d.group !== undefined ? `[${d.group}]` : "", d.flow !== undefined ? `flow ${d.flow}` : ""].filter(Boolean).join(" ");
    out.push(`  - ${d.aspect}${where !== "" ? ` ${where}` : ""}: ${d.message}`);
  }
  if (diffs.length > limit) out.push(`  … and ${diffs.length - limit} more`);
  return out.join("\n");
}

/** Counter-group attribution by address block: 10.<b>.0.0/16 and fd00:0:0:<b>::/64. */
export function blockOfAddress(addr: string): number | undefined {
  let m = /^10\.(\d+)\./.exec(addr);
  if (m !== null) return Number(m[1]);
  m = /^fd00:0?:0?:([0-9a-f]{1,4}):/.exec(addr) ?? /^fd00::([0-9a-f]{1,4}):/.exec(addr);
  if (m !== null) return parseInt(m[1] ?? "", 16);
  return undefined;
}

/** The block of a flow: its original source address's block. */
export function blockOfLine(l: CtLine): number | undefined {
  const src = /(?:^|\s)src=(\S+)/.exec(l.orig)?.[1];
  return src === undefined ? undefined : blockOfAddress(src);
}

/** The kernel side of a comparison, from a KernelResult. */
export function observedFromKernel(r: {
  table: string[];
  events: ReadonlyArray<{ kind: EventKind; line: string }>;
  stats: Record<string, number>;
  count: number;
  ctState: Record<CtStateName, number>;
  groups: Map<string, Record<CtStateName, number>>;
  agedSec?: number;
}): Observed {
  return {
    ...(r.agedSec !== undefined ? { agedSec: r.agedSec } : {}),
    table: r.table,
    events: r.events.map((e) => ({ kind: e.kind, line: parseCtLine(e.line) })),
    stats: r.stats,
    count: r.count,
    ctState: r.ctState,
    groups: r.groups,
  };
}
