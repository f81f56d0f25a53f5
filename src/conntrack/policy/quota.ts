/**
 * `quota`: a cap on the entries one source may hold — per address (pf
 * `max-src-states`), per prefix (/24 and /64 by default, as an operator
 * groups a client network), or per conntrack zone (OVS `ct-set-limits
 * zone=N,limit=M`, nft `ct count` per zone) — on top of the kernel's table.
 * A new entry whose source already holds `quota.max` entries is refused;
 * the table otherwise behaves as the kernel's (early drop when full). The
 * source is the ORIGINAL direction's (the initiator). From `quota.start` ×
 * nf_conntrack_max on (default 0: always, as pf and OVS do).
 *
 * Origin: pf.conf(5) max-src-states / source-track, OVS lib/conntrack.c
 * zone_limit_lookup (conntrack_zone_full), iptables connlimit / nft ct count.
 * Trade-off: one scanner or botnet prefix cannot take the table, but many
 * legitimate clients behind one NAT address or prefix share one quota, a
 * spoofed flood (one entry per random source) passes untouched, and the
 * counting costs a lookup per new entry.
 */
import { REFUSE_REASON } from "./policy.js";
import type { PolicyHost, PolicyOptionSpec, TablePolicy } from "./policy.js";
import { SourceCounter } from "./sources.js";
import type { SourceGrouping } from "./sources.js";
import type { Table } from "../table.js";
import type { TupleScratch } from "../tuple.js";

export const QUOTA_OPTIONS: readonly PolicyOptionSpec[] = [
  { name: "per", key: "per", doc: "what a quota is counted by", default: "address", values: ["address", "prefix", "zone"] },
  { name: "max", key: "max", doc: "entries one source may hold (0: nf_conntrack_max / 64, at least 16)", default: 0, min: 0, max: 1 << 30, integer: true },
  { name: "prefix4", key: "prefix4", doc: "IPv4 prefix length of a source with per=prefix", default: 24, min: 0, max: 32, integer: true },
  { name: "prefix6", key: "prefix6", doc: "IPv6 prefix length of a source with per=prefix", default: 64, min: 0, max: 128, integer: true },
  { name: "start", key: "start", doc: "occupancy (fraction of nf_conntrack_max) from which quotas apply", default: 0, min: 0, max: 1 },
];

export class QuotaPolicy implements TablePolicy {
  readonly name = "quota" as const;
  readonly options: Readonly<Record<string, number | string>>;
  readonly watchFrom: number;
  readonly wantsTicks = false;
  readonly sources: SourceCounter;
  readonly level = 0;
  readonly levelName = "normal";
  readonly #max: number;
  readonly #capacity: number;

  constructor(options: Readonly<Record<string, number | string>>, capacity: number, table: Table) {
    this.#capacity = capacity;
    const max = (options.max as number) > 0 ? (options.max as number) : Math.max(16, Math.floor(capacity / 64));
    this.options = { ...options, max };
    this.#max = max;
    this.sources = new SourceCounter(table, options.per as SourceGrouping, options.prefix4 as number, options.prefix6 as number);
    this.watchFrom = Math.floor((options.start as number) * capacity);
  }

  get bytes(): number {
    return this.sources.bytes;
  }

  admit(host: PolicyHost, t: TupleScratch): boolean {
    if (this.sources.countOfTuple(t) >= this.#max) {
      host.refuse(REFUSE_REASON.QUOTA);
      return false;
    }
    if (this.#capacity === 0 || host.count < this.#capacity) return true;
    if (host.kernelEarlyDrop(t.hash)) return true;
    host.kernelTableFull();
    return false;
  }

  gc(): void {}

  tick(): void {}
}
