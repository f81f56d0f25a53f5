/**
 * Drives the real kernel: inject an Ethernet capture into the router namespace
 * and read back what its conntrack made of it.
 *
 * Synchronisation without sleeps where possible:
 * - the event listener is known to be subscribed when its netlink socket shows
 *   the conntrack multicast groups in the namespace's /proc/net/netlink;
 * - injection is complete when the netdev ingress counter on r0 equals the
 *   number of frames tcpreplay reports sent;
 * - all events have been read when the listener's socket has no queued bytes
 *   and its output stopped growing.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import type { CtStateName, NftCounters, Topology } from "./netns.js";
import { EVENT_RCVBUF, readNftCounters, run, sleep } from "./netns.js";

export type EventKind = "NEW" | "UPDATE" | "DESTROY";

export interface KernelEvent {
  /** Userspace receive time from `-o timestamp`, seconds. */
  ts: number;
  kind: EventKind;
  /** The event line after the `[KIND]` prefix, without ` id=…`. */
  line: string;
  /** Conntrack id (from `-o id`). */
  id: string;
}

export interface KernelResult {
  /** Frames tcpreplay reports as sent. */
  sent: number;
  /** Seconds from the first injected frame to the table read (see Observed.agedSec). */
  agedSec: number;
  /** Frames counted at r0's netdev ingress hook (before defragmentation). */
  ingress: number;
  /** Packets counted in POSTROUTING (forwarded; will be or were confirmed). */
  post: number;
  /** Increase of the softnet backlog drop column (global, all CPUs) during the run. */
  softnetDrops: number;
  /** Netlink drops on the event listener's socket (lost events). */
  netlinkDrops: number;
  /** `conntrack -E -o timestamp,extended,id` events, in arrival order. */
  events: KernelEvent[];
  /** `conntrack -E expect` lines as printed (with InjectOptions.expectEvents), in arrival order. */
  expectEvents?: string[];
  /** `conntrack -L -o extended` lines (without ` id=…`), sorted. */
  table: string[];
  /** `conntrack -S`, summed over CPUs. */
  stats: Record<string, number>;
  /** `conntrack -C`. */
  count: number;
  /** nft prerouting counters per ct state (after defragmentation: one per datagram). */
  ctState: Record<CtStateName, number>;
  /** The same per counter group (see `countingRuleset`). */
  groups: Map<string, Record<CtStateName, number>>;
  /** Wall time the injection took, milliseconds. */
  replayMs: number;
}

/** Default injection rate: fast, yet slow enough that no conntrack event is lost. */
export const DEFAULT_PPS = 50_000;

/** Thrown when the event listener lost events; the run may be retried more slowly. */
export class EventsLostError extends Error {}

export interface InjectOptions {
  /** Frames the capture holds (all must arrive). */
  frames: number;
  /** Packets per second; default DEFAULT_PPS. */
  pps?: number;
  /** Real-time replay using the capture's timestamps (for timeout scenarios). */
  realtime?: boolean;
  /** Milliseconds to wait after injection before reading the table. */
  settleMs?: number;
  /** Runs once the event listener is subscribed, before the first frame (e.g. the router sending from its own sockets). */
  beforeInject?: () => Promise<void>;
  /** Also listen to `conntrack -E expect` (helpers): `KernelResult.expectEvents`. */
  expectEvents?: boolean;
}

function softnetDropped(): number {
  let sum = 0;
  for (const line of readFileSync("/proc/net/softnet_stat", "utf8").split("\n")) {
    const cols = line.trim().split(/\s+/);
    if (cols.length > 1) sum += parseInt(cols[1] ?? "0", 16);
  }
  return sum;
}

interface NetlinkSock {
  groups: number;
  rmem: number;
  drops: number;
}

/** The event listener's netfilter netlink socket, as /proc/net/netlink shows it in the namespace. */
async function listenerSocket(ns: string, mask = 7): Promise<NetlinkSock | undefined> {
  const out = (await run("cat", ["/proc/net/netlink"], { ns })).stdout;
  for (const line of out.split("\n").slice(1)) {
    const c = line.trim().split(/\s+/);
    // Columns: sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode; Eth 12 = NETLINK_NETFILTER.
    if (c[1] !== "12") continue;
    const groups = parseInt(c[3] ?? "0", 16);
    // NFNLGRP_CONNTRACK_NEW/UPDATE/DESTROY are groups 1–3 (bits 0–2), the EXP_ ones 4–6 (bits 3–5).
    if ((groups & mask) !== mask) continue;
    return { groups, rmem: Number(c[4]), drops: Number(c[8]) };
  }
  return undefined;
}

async function waitFor(what: string, timeoutMs: number, cond: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await sleep(20);
  }
}

const EVENT_RE = /^\[(\d+\.\d+)\]\s+\[(NEW|UPDATE|DESTROY)\]\s+(.*?)(?:\s+id=(\d+))?\s*$/;

export function parseEvents(text: string): KernelEvent[] {
  const events: KernelEvent[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    const m = EVENT_RE.exec(line);
    if (m === null) throw new Error(`Unparsable conntrack -E line: "${line}"`);
    events.push({ ts: Number(m[1]), kind: m[2] as EventKind, line: m[3] ?? "", id: m[4] ?? "" });
  }
  return events;
}

export function parseStats(text: string): Record<string, number> {
  const sum: Record<string, number> = {};
  for (const line of text.split("\n")) {
    if (!line.startsWith("cpu=")) continue;
    for (const m of line.matchAll(/(\w+)=(\d+)/g)) {
      const k = m[1] ?? "";
      if (k === "cpu") continue;
      sum[k] = (sum[k] ?? 0) + Number(m[2]);
    }
  }
  return sum;
}

/** The conntrack ids of `conntrack -L -o id` lines. */
export function parseTableIds(text: string): string[] {
  const ids: string[] = [];
  for (const m of text.matchAll(/\sid=(\d+)\s*$/gm)) ids.push(m[1] ?? "");
  return ids;
}

/**
 * Loss detection that does not rely on the listener noticing: every entry in
 * the table and every DESTROY must have had its NEW event, and every NEW
 * entry must be in the table or destroyed. The table is read while the
 * listener still runs, so an entry the GC reaps meanwhile has its DESTROY
 * in the stream. Returns a description of what is missing, or "".
 */
export function missingEvents(events: readonly KernelEvent[], tableIds: readonly string[]): string {
  const created = new Set<string>();
  const destroyed = new Set<string>();
  for (const e of events) {
    if (e.kind === "NEW") created.add(e.id);
    else if (e.kind === "DESTROY") destroyed.add(e.id);
  }
  const noNew = [...tableIds, ...destroyed].filter((id) => !created.has(id));
  const inTable = new Set(tableIds);
  const vanished = [...created].filter((id) => !inTable.has(id) && !destroyed.has(id));
  if (noNew.length === 0 && vanished.length === 0) return "";
  return `${noNew.length} entries without a NEW event, ${vanished.length} gone without a DESTROY event`;
}

export function parseTable(text: string): string[] {
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => l.replace(/\s+id=\d+\s*$/, "").trimEnd())
    .sort();
}

/** Reads the table, counters and statistics of the router namespace. */
export async function readKernelState(
  t: Topology,
): Promise<Pick<KernelResult, "table" | "stats" | "count" | "ctState" | "groups" | "ingress" | "post"> & { tableIds: string[] }> {
  const ns = t.rtNs;
  const listing = (await run("conntrack", ["-L", "-o", "extended,id"], { ns })).stdout;
  const table = parseTable(listing);
  const stats = parseStats((await run("conntrack", ["-S"], { ns })).stdout);
  const count = Number((await run("conntrack", ["-C"], { ns })).stdout.trim());
  const c: NftCounters = await readNftCounters(ns);
  return { table, stats, count, ctState: c.all, groups: c.groups, ingress: c.ingress, post: c.post, tableIds: parseTableIds(listing) };
}

/**
 * Injects `pcapPath` (Ethernet frames addressed to r0) from the injector
 * namespace and returns what the kernel's conntrack recorded. Throws when a
 * frame was lost on the way, so a comparison never runs on partial input.
 */
export async function injectCapture(t: Topology, pcapPath: string, opts: InjectOptions): Promise<KernelResult> {
  const ns = t.rtNs;
  const before = await readNftCounters(ns);
  const softBefore = softnetDropped();

  // conntrack-tools 1.4.7 applies `-b` to a socket other than its event
  // socket (ss shows the event socket at the default 212992 bytes), so a
  // burst of events can overrun it. A real-time priority lets the listener
  // drain it as fast as the kernel fills it (no drops at 400k packets/s).
  const listener = spawn(
    "ip",
    ["netns", "exec", ns, "chrt", "-f", "20", "stdbuf", "-oL", "conntrack", "-E", "-o", "timestamp,extended,id", "--buffer-size", String(EVENT_RCVBUF)],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  let err = "";
  let lastData = Date.now();
  listener.stdout.setEncoding("utf8");
  listener.stderr.setEncoding("utf8");
  listener.stdout.on("data", (d: string) => {
    out += d;
    lastData = Date.now();
  });
  listener.stderr.on("data", (d: string) => {
    err += d;
  });
  const exited = new Promise<void>((resolve) => listener.on("close", () => resolve()));
  const expListener =
    opts.expectEvents === true ? spawn("ip", ["netns", "exec", ns, "stdbuf", "-oL", "conntrack", "-E", "expect"], { stdio: ["ignore", "pipe", "pipe"] }) : null;
  let expOut = "";
  expListener?.stdout.setEncoding("utf8");
  expListener?.stdout.on("data", (d: string) => {
    expOut += d;
    lastData = Date.now();
  });
  const expExited = expListener === null ? Promise.resolve() : new Promise<void>((resolve) => expListener.on("close", () => resolve()));

  let sent = 0;
  let replayMs = 0;
  let agedSec = 0;
  let netlinkDrops = 0;
  let state: Awaited<ReturnType<typeof readKernelState>> | undefined;
  try {
    await waitFor("the conntrack event listener to subscribe", 10_000, async () => {
      if (listener.exitCode !== null) throw new Error(`Conntrack event listener exited: ${err.trim()}`);
      return (await listenerSocket(ns)) !== undefined;
    });
    if (expListener !== null) {
      await waitFor("the expectation event listener to subscribe", 10_000, async () => {
        if (expListener.exitCode !== null) throw new Error("Expectation event listener exited");
        return (await listenerSocket(ns, 0x38)) !== undefined;
      });
    }
    if (opts.beforeInject !== undefined) await opts.beforeInject();

    // Paced rather than top speed: the per-CPU backlog (1000 packets) and
    // the listener's socket both have limits; lost events trigger a retry.
    const speed = opts.realtime === true ? [] : ["--pps", String(opts.pps ?? DEFAULT_PPS)];
    const t0 = Date.now();
    // One CPU keeps the frames in order through the backlog of that CPU.
    const r =
      opts.frames === 0
        ? { stdout: "Successful packets: 0\nFailed packets: 0", stderr: "", code: 0 }
        : await run("taskset", ["-c", "0", "tcpreplay", "-q", "-K", ...speed, "-i", "inj0", pcapPath], {
            ns: t.injNs,
            timeoutMs: 10 * 60_000,
            allowFail: true,
          });
    replayMs = Date.now() - t0;
    const text = r.stdout + r.stderr;
    const ok = /Successful packets:\s+(\d+)/.exec(text);
    const failed = /Failed packets:\s+(\d+)/.exec(text);
    sent = ok !== null ? Number(ok[1]) : -1;
    if (r.code !== 0 || sent !== opts.frames || (failed !== null && Number(failed[1]) !== 0)) {
      throw new Error(`Tcpreplay did not send every frame: sent "${sent}" of "${opts.frames}", exit "${r.code}": ${text.trim()}`);
    }

    // All frames must show up at r0's ingress (a veth never drops silently,
    // but the per-CPU backlog can).
    let ingress = 0;
    await waitFor(`ingress count ${opts.frames + before.ingress}`, 10_000, async () => {
      ingress = (await readNftCounters(ns)).ingress;
      return ingress >= opts.frames + before.ingress;
    }).catch(() => {
      throw new Error(
        `Frames were lost before conntrack: sent "${sent}", arrived "${ingress - before.ingress}", ` + `softnet drops "${softnetDropped() - softBefore}"`,
      );
    });
    if (opts.settleMs !== undefined) await sleep(opts.settleMs);
    // Events: wait until the socket queue is empty and output is quiet.
    const drained = (): Promise<void> =>
      waitFor("the event listener to drain", 30_000, async () => {
        const s = await listenerSocket(ns);
        if (s === undefined) return true;
        netlinkDrops = s.drops;
        return s.rmem === 0 && Date.now() - lastData > 150;
      });
    await drained();
    // The table is read with the listener still running: whatever the GC reaps meanwhile is in the stream.
    state = await readKernelState(t);
    agedSec = (Date.now() - t0) / 1000;
    await drained();
  } finally {
    listener.kill("SIGTERM");
    expListener?.kill("SIGTERM");
    // An unref'd timer: a pending guard must not keep the test process alive.
    await Promise.race([Promise.all([exited, expExited]), new Promise<void>((r) => setTimeout(r, 5_000).unref())]);
    if (listener.exitCode === null) listener.kill("SIGKILL");
    if (expListener !== null && expListener.exitCode === null) expListener.kill("SIGKILL");
  }
  if (/ENOBUFS/.test(err) || netlinkDrops > 0) {
    throw new EventsLostError(`Conntrack events were lost: netlink drops "${netlinkDrops}": ${err.trim()}`);
  }
  const events = parseEvents(out);
  const missing = missingEvents(events, state.tableIds);
  if (missing !== "") throw new EventsLostError(`Conntrack events were lost: ${missing}`);
  const softnetDrops = softnetDropped() - softBefore;
  if (state.ingress - before.ingress !== opts.frames) {
    throw new Error(`Ingress counted "${state.ingress - before.ingress}" frames, expected "${opts.frames}"`);
  }
  return {
    ...state,
    agedSec,
    ingress: state.ingress - before.ingress,
    post: state.post - before.post,
    sent,
    softnetDrops,
    netlinkDrops,
    events,
    replayMs,
    ...(expListener !== null ? { expectEvents: expOut.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("conntrack v")) } : {}),
  };
}
