/**
 * The replay summary as plain data, and its text and JSON renderings.
 * Nothing here knows how the numbers were made.
 */

/** Packets by the `ct state` a ruleset would have seen. */
export interface PacketsByState {
  new: number;
  established: number;
  related: number;
  invalid: number;
  untracked: number;
}

export interface ReplaySummary {
  input: string;
  /** "pcap" | "pcapng" | "" when nothing could be read. */
  format: string;
  clock: "capture" | "frozen";
  capture: {
    records: number;
    bytes: number;
    /** Capture time of the first and last record, seconds since the epoch (fractional). */
    first: number | null;
    last: number | null;
    linkTypes: number[];
  };
  packets: PacketsByState & {
    total: number;
    /** Packets conntrack saw (IP packets after reassembly). */
    tracked: number;
    /** Packets conntrack itself dropped (table full, failed reopen). */
    dropped: number;
    /** Frames that carried no IP packet (ARP, LLDP, …). */
    nonIp: number;
    /** Frames that could not be decoded, by reason. */
    malformed: Record<string, number>;
    /** Fragments held for reassembly and datagrams reassembled. */
    fragments: number;
    reassembled: number;
    /** Invalid packets by reason (human detail for the `invalid` count). */
    invalidReasons: Record<string, number>;
  };
  /** Final table: entries by protocol, then by state ("" for protocols without states). */
  entries: { total: number; byProtocol: Record<string, Record<string, number>>; assured: number; unreplied: number };
  /** `conntrack -S` counters, summed. */
  stats: Record<string, number>;
  peak_entries: number;
  /** Capture time (seconds) at which the peak was first reached. */
  peak_time: number | null;
  max_entries: number;
  buckets: number;
  memory_bytes: number;
  /** Kernel log lines the run would have produced, with capture times. */
  log: { time: number; line: string }[];
  /** Set when the capture was truncated or corrupt: what was read before it is still reported. */
  error: { message: string; byteOffset: number } | null;
  elapsed_ms: number;
  /** Sysctls that differ from the kernel defaults. */
  sysctls: Record<string, number>;
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
    `${s.input}: ${num(s.capture.records)} records (${s.format || "unreadable"}), ` +
      `${formatBytes(s.capture.bytes)}, ${dur.toFixed(3)} s of capture, clock ${s.clock}`,
  );
  if (s.error) out.push(`error: ${s.error.message} (results below cover everything before byte ${s.error.byteOffset})`);

  out.push("", "Packets by conntrack state");
  const p = s.packets;
  const rows: string[][] = STATE_KEYS.map((k) => [k, num(p[k]), pct(p[k], p.tracked)]);
  rows.push(["total tracked", num(p.tracked), ""]);
  out.push(table(rows));
  const extra: string[] = [];
  if (p.dropped > 0) extra.push(`${num(p.dropped)} dropped by conntrack (table full)`);
  if (p.nonIp > 0) extra.push(`${num(p.nonIp)} non-IP frames ignored`);
  const mal = Object.entries(p.malformed);
  if (mal.length > 0) extra.push(`malformed: ${mal.map(([k, v]) => `${k} ${num(v)}`).join(", ")}`);
  if (p.fragments > 0) extra.push(`${num(p.fragments)} fragments → ${num(p.reassembled)} reassembled datagrams`);
  for (const e of extra) out.push(`  ${e}`);
  const inv = Object.entries(p.invalidReasons).sort((a, b) => b[1] - a[1]);
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
  for (const [proto, states] of Object.entries(s.entries.byProtocol).sort()) {
    for (const [state, n] of Object.entries(states).sort((a, b) => b[1] - a[1])) {
      erows.push([`${proto}${state ? " " + state : ""}`, num(n)]);
    }
  }
  if (erows.length > 0) out.push(table(erows));

  const peakAt = s.peak_time !== null ? ` at ${formatTime(s.peak_time)}` : "";
  out.push(
    "",
    (s.max_entries === 0
      ? `Peak ${num(s.peak_entries)} entries (nf_conntrack_max=0: no limit)${peakAt}; `
      : `Peak ${num(s.peak_entries)} of ${num(s.max_entries)} entries (${pct(s.peak_entries, s.max_entries)} of nf_conntrack_max)${peakAt}; `) +
      `${num(s.buckets)} buckets; memory ${formatBytes(s.memory_bytes)}`,
  );

  const st = Object.entries(s.stats);
  if (st.length > 0) out.push(`conntrack -S: ${st.map(([k, v]) => `${k}=${v}`).join(" ")}`);

  if (s.log.length > 0) {
    out.push("", "Kernel log");
    const shown = s.log.slice(0, 20);
    for (const l of shown) out.push(`  [${formatTime(l.time)}] ${l.line}`);
    if (s.log.length > shown.length) out.push(`  … ${num(s.log.length - shown.length)} more lines`);
  }

  const changed = Object.entries(s.sysctls);
  if (changed.length > 0) out.push("", `Sysctls changed: ${changed.map(([k, v]) => `${k}=${v}`).join(" ")}`);
  const pps = s.elapsed_ms > 0 ? Math.round((p.total * 1000) / s.elapsed_ms) : 0;
  out.push("", `Replayed in ${(s.elapsed_ms / 1000).toFixed(2)} s (${num(pps)} packets/s)`);
  return out.join("\n") + "\n";
}

/** Advice a person needs to read the numbers right; empty when nothing stands out. */
export function summaryHints(s: ReplaySummary): string[] {
  const h: string[] = [];
  const r = s.packets.invalidReasons;
  const bad = r["bad checksum"] ?? 0;
  if (bad > 0 && (s.sysctls.nf_conntrack_checksum ?? 1) !== 0) {
    h.push(
      `${num(bad)} packets had a bad transport checksum. Captures taken on the sending host carry offloaded checksums; ` +
        "replay with --sysctl nf_conntrack_checksum=0 if this capture is one",
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
  const est = s.entries.byProtocol.tcp?.ESTABLISHED ?? 0;
  if (est > 0 && est >= 0.5 * s.entries.total && s.sysctls.nf_conntrack_tcp_timeout_established === undefined) {
    h.push(
      `${num(est)} TCP entries are ESTABLISHED at the end; with nf_conntrack_tcp_timeout_established at its default (5 days) ` +
        "connections whose FIN/RST was lost stay that long",
    );
  }
  return h;
}

/** The `--json` rendering: stable keys, numbers as numbers. */
export function formatSummaryJson(s: ReplaySummary): string {
  return JSON.stringify(s, null, 2) + "\n";
}
