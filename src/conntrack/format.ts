/**
 * Text as the real tools print it:
 * - `conntrack -L` / `-E` lines: libnetfilter_conntrack
 *   src/conntrack/snprintf_default.c (__snprintf_conntrack_default) over the
 *   attributes the kernel puts in each message (nf_conntrack_netlink.c
 *   ctnetlink_fill_info for dumps, ctnetlink_conntrack_event for events);
 * - /proc/net/nf_conntrack: nf_conntrack_standalone.c ct_seq_show;
 * - `conntrack -S` and /proc/net/stat/nf_conntrack.
 * IPv6 addresses are compressed like glibc's inet_ntop for conntrack-tools,
 * fully expanded like the kernel's %pI6 for /proc.
 */
import { formatIpv4, formatIpv6 } from "../packet/addr.js";
import type { PacketView } from "../packet/view.js";
import { IPPROTO } from "../packet/view.js";
import { conntrackProtoName, trackedProtoName } from "../packet/proto.js";
import { EVENT_TYPE, IPCT, IPS } from "./constants.js";
import type { EventType } from "./constants.js";
import type { EntryReader } from "./entry.js";
import type { ConntrackStats } from "./stats.js";
import type { SysctlValues } from "./sysctl.js";

/** Options of `conntrack -E -o ...` that change the printed line. */
export interface EventFormatOptions {
  /** `-o extended`: the layer-3 name and number first. */
  readonly extended?: boolean;
  /** `-o timestamp`: a `[sec.usec]\t` prefix with the event time. */
  readonly timestamp?: boolean;
}

/** Dotted quad of a network-order word. */
function ipv4(w: number): string {
  return formatIpv4(w);
}

/** IPv6 as conntrack-tools prints it (glibc inet_ntop). */
export function ipv6Compressed(w0: number, w1: number, w2: number, w3: number): string {
  return formatIpv6(w0, w1, w2, w3);
}

/** The kernel's %pI6: eight groups of four hex digits. */
export function ipv6Full(w0: number, w1: number, w2: number, w3: number): string {
  const h = (x: number): string => (x >>> 0).toString(16).padStart(8, "0");
  const s = h(w0) + h(w1) + h(w2) + h(w3);
  let out = "";
  for (let i = 0; i < 32; i += 4) out += (i ? ":" : "") + s.slice(i, i + 4);
  return out;
}

/** An address as conntrack-tools prints it. */
export function ipText(family: 4 | 6, w0: number, w1: number, w2: number, w3: number): string {
  return family === 4 ? ipv4(w0 >>> 0) : ipv6Compressed(w0 >>> 0, w1 >>> 0, w2 >>> 0, w3 >>> 0);
}

/** libnetfilter_conntrack proto2str[]. */
export function l4Name(proto: number): string {
  return conntrackProtoName(proto);
}

/** The kernel's l4proto_name: only protocols with a tracker have a name (DCCP is generic since 6.17). */
function procL4Name(proto: number): string {
  return trackedProtoName(proto) ?? "unknown";
}

function pad8(s: string): string {
  return s.length >= 8 ? s : s + " ".repeat(8 - s.length);
}

/**
 * A tuple the way `conntrack` prints it: `src=… dst=… ` then the protocol
 * keys (ports, ICMP type/code/id, GRE keys), each item followed by a space.
 * `proc` selects the /proc variant (%pI6 addresses, no keys for protocols the
 * kernel tracks generically).
 */
export function tupleText(e: EntryReader, dir: 0 | 1, proc: boolean): string {
  const t = e.tuple(dir);
  let s: string;
  if (t.family === 4) s = `src=${ipv4(t.s0)} dst=${ipv4(t.d0)} `;
  else if (proc) s = `src=${ipv6Full(t.s0, t.s1, t.s2, t.s3)} dst=${ipv6Full(t.d0, t.d1, t.d2, t.d3)} `;
  else s = `src=${ipv6Compressed(t.s0, t.s1, t.s2, t.s3)} dst=${ipv6Compressed(t.d0, t.d1, t.d2, t.d3)} `;
  switch (t.proto) {
    case IPPROTO.TCP:
    case IPPROTO.UDP:
    case IPPROTO.UDPLITE:
    case IPPROTO.SCTP:
      return `${s}sport=${t.sport} dport=${t.dport} `;
    case IPPROTO.ICMP:
    case IPPROTO.ICMPV6:
      return `${s}type=${t.dport >>> 8} code=${t.dport & 0xff} id=${t.sport} `;
    case IPPROTO.GRE:
      return `${s}srckey=0x${t.sport.toString(16)} dstkey=0x${t.dport.toString(16)} `;
    case IPPROTO.DCCP:
      // libnetfilter_conntrack still prints DCCP ports; the generic tracker sends none, so they read 0.
      return proc ? s : `${s}sport=0 dport=0 `;
    default:
      return s;
  }
}

function counters(e: EntryReader, dir: 0 | 1): string {
  const c = e.counters(dir);
  return c === null ? "" : `packets=${c.packets} bytes=${c.bytes} `;
}

function assured(status: number): string {
  if (status & IPS.HW_OFFLOAD) return "[HW_OFFLOAD] ";
  if (status & IPS.OFFLOAD) return "[OFFLOAD] ";
  if (status & IPS.ASSURED) return "[ASSURED] ";
  return "";
}

/** State text of protocols whose netlink messages carry a state (TCP, SCTP). */
function protoinfo(e: EntryReader): string {
  const p = e.proto;
  if (p !== IPPROTO.TCP && p !== IPPROTO.SCTP) return "";
  return `${e.stateName} `;
}

function l3(e: EntryReader): string {
  return e.family === 6 ? "ipv6     10 " : "ipv4     2 ";
}

/** One `conntrack -L` line (`-o extended` when `extended`) of an entry listed at `nowMs`. */
export function listLine(e: EntryReader, extended: boolean, nowMs: number): string {
  const proto = e.proto;
  const status = e.status;
  let s = extended ? l3(e) : "";
  s += `${pad8(l4Name(proto))} ${proto} ${e.timeoutSeconds} `;
  s += protoinfo(e);
  s += tupleText(e, 0, false);
  s += counters(e, 0);
  if ((status & IPS.SEEN_REPLY) === 0) s += "[UNREPLIED] ";
  s += tupleText(e, 1, false);
  s += counters(e, 1);
  s += assured(status);
  s += `mark=${e.mark} `;
  const zone = e.zone;
  if (zone !== 0) s += `zone=${zone} `;
  const ts = e.timestamps();
  if (ts !== null) {
    // libnetfilter_conntrack: whole seconds of "now" (or stop) minus whole seconds of start.
    const stop = ts.stop !== 0 ? ts.stop : nowMs;
    s += `delta-time=${Math.floor(stop / 1000) - Math.floor(ts.start / 1000)} `;
  }
  const helper = e.helper;
  if (helper !== "") s += `helper=${helper} `;
  s += "use=1";
  return s;
}

/** One /proc/net/nf_conntrack line (ct_seq_show) of an entry read at `nowMs` by a table running with `sys`. */
export function procLine(e: EntryReader, sys: SysctlValues, nowMs: number): string {
  const proto = e.proto;
  const status = e.status;
  const fam = e.family;
  let s = `${pad8(fam === 6 ? "ipv6" : "ipv4")} ${fam === 6 ? 10 : 2} ${pad8(procL4Name(proto))} ${proto} `;
  s += `${e.timeoutSeconds} `;
  if (proto === IPPROTO.GRE) {
    // gre_print_conntrack.
    s += `timeout=${Math.floor(sys.nf_conntrack_gre_timeout / 1000)}, stream_timeout=${Math.floor(sys.nf_conntrack_gre_timeout_stream / 1000)} `;
  } else {
    s += protoinfo(e);
  }
  s += tupleText(e, 0, true);
  s += counters(e, 0);
  if ((status & IPS.SEEN_REPLY) === 0) s += "[UNREPLIED] ";
  s += tupleText(e, 1, true);
  s += counters(e, 1);
  s += assured(status);
  s += `mark=${e.mark} `;
  s += `zone=${e.zone} `;
  const ts = e.timestamps();
  if (ts !== null) {
    const d = nowMs - ts.start;
    s += `delta-time=${d > 0 ? Math.floor(d / 1000) : 0} `;
  }
  // The reader holds a reference on top of the table's.
  s += "use=2";
  return s;
}

function eventTag(type: EventType): string {
  switch (type) {
    case EVENT_TYPE.NEW:
      return "    [NEW] ";
    case EVENT_TYPE.UPDATE:
      return " [UPDATE] ";
    default:
      return "[DESTROY] ";
  }
}

/** `[sec.usec]\t` as conntrack -E -o timestamp prints it ("[%-.8ld.%-.6ld]\t"). */
export function timestampPrefix(timeMs: number): string {
  const us = Math.floor(timeMs * 1000);
  const sec = Math.floor(us / 1e6);
  const usec = us - sec * 1e6;
  return `[${String(sec).padStart(8, "0")}.${String(usec).padStart(6, "0")}]\t`;
}

/**
 * One `conntrack -E` line. NEW/UPDATE carry the timeout, the protocol state
 * only with IPCT_PROTOINFO, the mark only when set or changed, no counters;
 * DESTROY carries the state, counters and delta-time, and the timeout only
 * when non-zero (ctnetlink_dump_timeout skip_zero: an expiry shows none).
 */
export function eventLine(e: EntryReader, type: EventType, bits: number, timeMs: number, o: EventFormatOptions = {}): string {
  const proto = e.proto;
  const status = e.status;
  const destroy = type === EVENT_TYPE.DESTROY;
  let s = o.timestamp === true ? timestampPrefix(timeMs) : "";
  s += eventTag(type);
  if (o.extended === true) s += l3(e);
  s += `${pad8(l4Name(proto))} ${proto} `;
  const timeout = e.timeoutSeconds;
  if (!destroy || timeout !== 0) s += `${timeout} `;
  if (destroy || bits & IPCT.PROTOINFO) s += protoinfo(e);
  s += tupleText(e, 0, false);
  if (destroy) s += counters(e, 0);
  if ((status & IPS.SEEN_REPLY) === 0) s += "[UNREPLIED] ";
  s += tupleText(e, 1, false);
  if (destroy) s += counters(e, 1);
  s += assured(status);
  const mark = e.mark;
  if (mark !== 0 || bits & IPCT.MARK) s += `mark=${mark} `;
  const zone = e.zone;
  if (zone !== 0) s += `zone=${zone} `;
  // ctnetlink_conntrack_event dumps the helper of every event but DESTROY.
  if (!destroy) {
    const helper = e.helper;
    if (helper !== "") s += `helper=${helper} `;
  }
  if (destroy) {
    const ts = e.timestamps();
    if (ts !== null) {
      const stop = ts.stop !== 0 ? ts.stop : timeMs;
      s += `delta-time=${Math.floor(stop / 1000) - Math.floor(ts.start / 1000)} `;
    }
  }
  return s.trimEnd();
}

/** `conntrack -S`: one line per CPU; a replay is one CPU. */
export function statsLines(st: ConntrackStats): string[] {
  let s = "cpu=0   \t";
  for (const [k, v] of st.entries()) s += `${k}=${v} `;
  return [s];
}

/** /proc/net/stat/nf_conntrack (ct_cpu_seq_show), one CPU. */
export function procStatLines(st: ConntrackStats, count: number): string[] {
  const h = (n: number): string => (n >>> 0).toString(16).padStart(8, "0");
  const head =
    "entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart";
  const row =
    `${h(count)}  ${h(st.clash_resolve)} ${h(st.found)} ${h(0)} ${h(st.invalid)} ${h(0)} ${h(0)} ${h(st.chaintoolong)} ` +
    `${h(st.insert)} ${h(st.insert_failed)} ${h(st.drop)} ${h(st.early_drop)} ${h(st.error)}  ${h(st.expect_new)} ${h(st.expect_create)} ${h(st.expect_delete)} ${h(st.search_restart)}`;
  return [head, row];
}

/**
 * The text nf_l4proto_log_invalid hands to the packet logger:
 * "nf_ct_proto_<n>: <message> " followed by the packet's addresses (a short
 * form of nf_log_syslog's dump).
 */
export function invalidLogLine(p: PacketView, message: string): string {
  const fam = p.family === 6 ? 6 : 4;
  const src = ipText(fam, p.src[0] as number, p.src[1] as number, p.src[2] as number, p.src[3] as number);
  const dst = ipText(fam, p.dst[0] as number, p.dst[1] as number, p.dst[2] as number, p.dst[3] as number);
  let s = `nf_ct_proto_${p.proto}: ${message.trimEnd()} SRC=${src} DST=${dst} PROTO=${l4Name(p.proto).toUpperCase()}`;
  if (p.proto === IPPROTO.TCP || p.proto === IPPROTO.UDP || p.proto === IPPROTO.UDPLITE || p.proto === IPPROTO.SCTP) {
    s += ` SPT=${p.sport} DPT=${p.dport}`;
  }
  return s;
}
