/**
 * The replay summary as plain data, and its text and JSON renderings.
 * Nothing here knows how the numbers were made.
 */
import { formatCensusText } from "../conntrack/census.js";
import type { CensusResult } from "../conntrack/census.js";
import type { KernelMemory } from "./memory.js";

export type { KernelMemory } from "./memory.js";

/** Packets by the `ct state` a ruleset would have seen. */
export interface PacketsByState {
  new: number;
  established: number;
  related: number;
  invalid: number;
  untracked: number;
}

/**
 * The replay summary: what `ctlab replay --json` prints. This is the stable
 * interface: schema/replay-summary.schema.json describes it and the tests
 * validate real outputs against it. Property names are snake_case; maps keyed
 * by data (protocol and state names, reason names, sysctl and `conntrack -S`
 * counter names) never have an empty key.
 */
export interface ReplaySummary {
  input: string;
  /** "pcap" | "pcapng", or null when nothing could be read. */
  format: "pcap" | "pcapng" | null;
  clock: "capture" | "frozen";
  /** The run was stopped (SIGINT/SIGTERM) before the capture ended: everything below covers what was read. */
  interrupted: boolean;
  capture: {
    records: number;
    bytes: number;
    /** Capture time of the first and last record, seconds since the epoch (fractional). */
    first: number | null;
    last: number | null;
    link_types: number[];
    /** Frames skipped because ctlab cannot decode their link type, by link type. */
    unsupported_link_types: Array<{ link_type: number; frames: number }>;
    /** Records whose timestamp is earlier than the record before. */
    backwards_timestamps: number;
  };
  packets: PacketsByState & {
    total: number;
    /** Packets conntrack saw (IP packets after reassembly). */
    tracked: number;
    /** Packets conntrack itself dropped (table full, failed reopen). */
    dropped: number;
    /** Frames that carried no IP packet (ARP, LLDP, …) or that the IP layer refused. */
    non_ip: number;
    /** Frames that could not be decoded, by reason. */
    malformed: Record<string, number>;
    /** Fragments held for reassembly and datagrams reassembled. */
    fragments: number;
    reassembled: number;
    /** Invalid packets by reason (human detail for the `invalid` count). */
    invalid_reasons: Record<string, number>;
    /** Checksum outcomes that are not a ct state (see formatSummaryText). */
    checksums: {
      /** IPv4 packets dropped by the IP layer for a wrong header checksum (also in `malformed`). */
      ipv4_bad: number;
      /** IPv4 packets accepted with a zero header checksum (transmit offload on the capturing host). */
      ipv4_zero: number;
      /** Packets whose transport checksum the sending host left to the NIC: tracked, not checked. */
      offloaded: number;
    };
  };
  /** Final table: entries by protocol, each with its entries by state (protocols without states have none). */
  entries: {
    total: number;
    by_protocol: Record<string, { entries: number; states: Record<string, number> }>;
    assured: number;
    unreplied: number;
    /** TCP entries ESTABLISHED with more than nf_conntrack_tcp_timeout_unacknowledged left: on the 5-day clock. */
    tcp_established_long: number;
  };
  /** Who fills the table: the final table and the table at its peak (null when no census was asked for). */
  census: {
    top: number;
    final: CensusResult;
    /**
     * The census of the table at a peak (see replay.ts): `peak_entries` is the peak it describes (at least
     * 4/5 of the summary's), `peak_time` when that peak was reached, `time` when the census was taken.
     */
    peak: CensusResult & { peak_entries: number; peak_time: number | null; time: number | null };
  } | null;
  /** `conntrack -S` counters, summed. */
  stats: Record<string, number>;
  peak_entries: number;
  /** Capture time (seconds) at which the peak was first reached. */
  peak_time: number | null;
  /** nf_conntrack_max (0: no limit). */
  max_entries: number;
  buckets: number;
  memory: {
    /** What the kernel would spend on the final table, on the peak table, and on a full table (nf_conntrack_max entries). */
    kernel: KernelMemory;
    kernel_peak: KernelMemory;
    kernel_full: KernelMemory | null;
    /** ctlab's own arrays for this table. */
    ctlab_bytes: number;
  };
  /** Kernel log lines the run would have produced, with capture times. */
  log: { time: number; line: string }[];
  /** Set when the capture was truncated or corrupt: what was read before it is still reported. */
  error: { message: string; byte_offset: number } | null;
  /** Things the reader should know that are not errors (skipped link types, backwards timestamps, …). */
  warnings: string[];
  elapsed_ms: number;
  /** Sysctls that differ from the kernel defaults. */
  sysctls: Record<string, number>;
  /** `--policy` only: the table policy, its options and what it did. */
  policy?: {
    name: string;
    options: Record<string, number | string>;
    level: string;
    evictions: Record<string, number>;
    refusals: Record<string, number>;
    level_changes: number;
    /** Evicted entries whose connection sent another packet before the entry's deadline. */
    live_evictions: number;
  };
}

/** Entries of a protocol in a state ("" or absent: all of the protocol) in the final table. */
export function entriesIn(s: ReplaySummary, protocol: string, state?: string): number {
  const p = s.entries.by_protocol[protocol];
  if (p === undefined) return 0;
  return state === undefined || state === "" ? p.entries : (p.states[state] ?? 0);
}

const STATE_KEYS = ["new", "established", "related", "invalid", "untracked"] as const;

function pct(n: number, d: number): string {
  if (d === 0) return "0%";
  const v = (100 * n) / d;
  return v >= 10 || v === 0 ? `${v.toFixed(0)}%` : `${v.toFixed(1)}%`;
}

function num(n: number): string {
  return n.toLocaleString("en-US");
}

/** Formats a byte count the way people read memory sizes. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 * 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
  return `${(n / (1024 * 1024 * 1024)).toFixed(2)} GiB`;
}

/** Formats capture time as the kernel log and tcpdump readers expect: UTC date and time with microseconds. */
export function formatTime(t: number): string {
  const ms = Math.floor(t * 1000);
  const iso = new Date(ms).toISOString(); // 2026-11-25T14:47:21.123Z
  const usec = Math.round((t - Math.floor(t)) * 1e6)
    .toString()
    .padStart(6, "0");
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${usec.slice(0, 6)}`;
}

function table(rows: string[][], indent = "  "): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows
    .map(
      (r) =>
        indent +
        r
          .map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
          .join("  ")
          .trimEnd(),
    )
    .join("\n");
}

/** The human summary printed by `ctlab replay`. */
export function formatSummaryText(s: ReplaySummary): string {
  const out: string[] = [];
  const dur = s.capture.first !== null && s.capture.last !== null ? s.capture.last - s.capture.first : 0;
  out.push(
    `${s.input}: ${num(s.capture.records)} records (${s.format ?? "unreadable"}), ` +
      `${formatBytes(s.capture.bytes)}, ${dur.toFixed(3)} s of capture, clock ${s.clock}`,
  );
  if (s.interrupted) out.push("interrupted: the results below cover the packets read before the signal");
  if (s.error) out.push(`error: ${s.error.message} (results below cover everything before byte ${s.error.byte_offset})`);
  for (const w of s.warnings) out.push(`warning: ${w}`);

  out.push("", "Packets by conntrack state");
  const p = s.packets;
  const rows: string[][] = STATE_KEYS.map((k) => [k, num(p[k]), pct(p[k], p.tracked)]);
  rows.push(["total tracked", num(p.tracked), ""]);
  out.push(table(rows));
  const extra: string[] = [];
  if (p.dropped > 0) extra.push(`${num(p.dropped)} dropped by conntrack (table full)`);
  if (p.non_ip > 0) extra.push(`${num(p.non_ip)} non-IP frames ignored`);
  const mal = Object.entries(p.malformed);
  if (mal.length > 0) extra.push(`malformed: ${mal.map(([k, v]) => `${k} ${num(v)}`).join(", ")}`);
  if (p.fragments > 0) extra.push(`${num(p.fragments)} fragments → ${num(p.reassembled)} reassembled datagrams`);
  const cs = p.checksums;
  if (cs.ipv4_bad > 0) extra.push(`${num(cs.ipv4_bad)} IPv4 packets dropped for a wrong header checksum (ip_rcv)`);
  if (cs.ipv4_zero > 0) extra.push(`${num(cs.ipv4_zero)} IPv4 packets with a zero (offloaded) header checksum, accepted`);
  if (cs.offloaded > 0) extra.push(`${num(cs.offloaded)} packets with offloaded checksums (left to the sending host's NIC), not checked`);
  for (const e of extra) out.push(`  ${e}`);
  const inv = Object.entries(p.invalid_reasons).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  if (inv.length > 0) {
    out.push("", "Packets left without a conntrack entry, by reason");
    out.push(table(inv.map(([k, v]) => [k, num(v)])));
  }

  const hints = summaryHints(s);
  if (hints.length > 0) {
    out.push("", "Hints");
    for (const h of hints) out.push(`  - ${h}`);
  }

  out.push("", `Table at the end: ${num(s.entries.total)} entries (${num(s.entries.assured)} assured, ${num(s.entries.unreplied)} unreplied)`);
  const erows: string[][] = [];
  for (const [proto, e] of Object.entries(s.entries.by_protocol).sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    const states = Object.entries(e.states).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    if (states.length === 0) erows.push([proto, num(e.entries)]);
    for (const [state, n] of states) erows.push([`${proto} ${state}`, num(n)]);
  }
  if (erows.length > 0) out.push(table(erows));

  const max = s.max_entries === 0 ? "no limit (nf_conntrack_max=0)" : `${num(s.max_entries)} (${pct(s.peak_entries, s.max_entries)} of nf_conntrack_max)`;
  const peakAt = s.peak_time !== null ? ` at ${formatTime(s.peak_time)}` : "";
  out.push("", `Peak ${num(s.peak_entries)} entries of ${max}${peakAt}; ${num(s.buckets)} buckets`);
  const m = s.memory;
  const ext = m.kernel.extension_size > 0 ? ` + ${m.kernel.extension_size} B extension` : "";
  out.push(
    `Memory: kernel ${formatBytes(m.kernel.total_bytes)} for this table (${m.kernel.object_size} B per entry${ext}, 8 B per bucket), ` +
      `${formatBytes(m.kernel_peak.total_bytes)} at the peak` +
      (m.kernel_full !== null ? `, ${formatBytes(m.kernel_full.total_bytes)} when full (nf_conntrack_max)` : "") +
      `; ctlab ${formatBytes(m.ctlab_bytes)}`,
  );

  if (s.census !== null && s.census.final.entries > 0) {
    out.push("", ...formatCensusText(s.census.final, `Who fills the table at the end (top ${s.census.top})`));
    const pk = s.census.peak;
    if (pk.entries > 0 && !sameCensus(pk, s.census.final)) {
      const at = pk.time !== null ? ` at ${formatTime(pk.time)}` : "";
      const of = pk.peak_entries === s.peak_entries ? "" : `; the highest peak, ${num(s.peak_entries)} entries, has no census of its own (see replay.ts)`;
      out.push("", ...formatCensusText(pk, `Who filled the table at its peak (${num(pk.entries)} entries${at}${of})`));
    }
  }

  const st = Object.entries(s.stats);
  if (st.length > 0) out.push("", `conntrack -S: ${st.map(([k, v]) => `${k}=${v}`).join(" ")}`);

  if (s.log.length > 0) {
    out.push("", "Kernel log");
    const shown = s.log.slice(0, 20);
    for (const l of shown) out.push(`  [${formatTime(l.time)}] ${l.line}`);
    if (s.log.length > shown.length) out.push(`  … ${num(s.log.length - shown.length)} more lines`);
  }

  if (s.policy !== undefined) {
    const pol = s.policy;
    const nz = (r: Record<string, number>) =>
      Object.entries(r)
        .filter(([, v]) => v > 0)
        .map(([k, v]) => `${k} ${num(v)}`)
        .join(", ") || "none";
    const o = Object.entries(pol.options).map(([k, v]) => `${k}=${v}`);
    out.push(
      "",
      `Table policy ${pol.name}${o.length > 0 ? ` (${o.join(" ")})` : ""}: evicted ${nz(pol.evictions)}; refused ${nz(pol.refusals)}; ${num(pol.live_evictions)} live connections evicted; ${num(pol.level_changes)} pressure-level changes`,
    );
  }
  const changed = Object.entries(s.sysctls);
  if (changed.length > 0) out.push("", `Sysctls changed: ${changed.map(([k, v]) => `${k}=${v}`).join(" ")}`);
  const pps = s.elapsed_ms > 0 ? Math.round((p.total * 1000) / s.elapsed_ms) : 0;
  out.push("", `Replayed in ${(s.elapsed_ms / 1000).toFixed(2)} s (${num(pps)} packets/s)`);
  return out.join("\n") + "\n";
}

function sameCensus(a: CensusResult, b: CensusResult): boolean {
  const strip = (c: CensusResult) => JSON.stringify({ ...c, peak_entries: 0, peak_time: 0, time: 0 });
  return strip(a) === strip(b);
}

/** Advice a person needs to read the numbers right; empty when nothing stands out. Each is true of the entries it cites. */
export function summaryHints(s: ReplaySummary): string[] {
  const h: string[] = [];
  const r = s.packets.invalid_reasons;
  const bad = r["bad checksum"] ?? 0;
  if (bad > 0 && (s.sysctls.nf_conntrack_checksum ?? 1) !== 0) {
    h.push(
      `${num(bad)} packets had a wrong transport checksum, the kernel counts them invalid. Offloaded checksums of the ` +
        "capturing host are recognised and not among them; if a tool rewrote these packets without fixing their checksums, " +
        "replay with --sysctl nf_conntrack_checksum=0",
    );
  }
  const full = r["table full"] ?? 0;
  if (full > 0) {
    h.push(
      `The table was full: ${num(full)} packets were dropped. Early drop only evicts entries that are not ASSURED; ` +
        "raise nf_conntrack_max (and nf_conntrack_buckets), shorten timeouts of the states that dominate the table, " +
        "or NOTRACK traffic that needs no state",
    );
  }
  // Only entries that really run on the established timeout: an UNREPLIED or unacknowledged entry is
  // capped at nf_conntrack_tcp_timeout_unacknowledged (300 s) and leaves soon.
  const long = s.entries.tcp_established_long;
  if (long > 0 && long >= 0.5 * s.entries.total && s.sysctls.nf_conntrack_tcp_timeout_established === undefined) {
    h.push(
      `${num(long)} TCP entries are ESTABLISHED at the end with more than nf_conntrack_tcp_timeout_unacknowledged left: ` +
        "with nf_conntrack_tcp_timeout_established at its default (5 days) connections whose FIN/RST was lost stay that long",
    );
  }
  return h;
}

/** The `--json` rendering: stable keys, numbers as numbers. */
export function formatSummaryJson(s: ReplaySummary): string {
  return JSON.stringify(s, null, 2) + "\n";
}
