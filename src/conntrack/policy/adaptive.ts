/**
 * `adaptive`: OpenBSD pf's adaptive timeouts on top of the kernel's table.
 * Once the table holds `adaptive.start` × nf_conntrack_max entries, every
 * timeout is scaled by (end − occupancy) / (end − start): linearly down to
 * zero at `adaptive.end` × nf_conntrack_max (pf's defaults: 60 % and 120 % of
 * `limit states`). An entry idle longer than its scaled timeout expires.
 * When the table is full nonetheless, the kernel's early drop applies.
 *
 * Origin: pf.conf(5) "adaptive.start / adaptive.end", sys/net/pf.c
 * pf_state_expires(). pf scales at expiry time; here the timeout classes are
 * reaped from their heads (longest idle first) when a new entry arrives above
 * the start mark and once a second while above it, so nothing is rescanned.
 * Trade-off: smooth and stateless, it shortens every state alike — including
 * live idle ones (keepalive-less SSH, database pools) — and at the kernel's
 * 5-day ESTABLISHED timeout a scale of even 10 % still keeps an idle
 * connection-flood entry for half a day: it cannot save a table filled by
 * completed handshakes.
 */
import { EVICT_REASON } from "./policy.js";
import type { PolicyHost, PolicyOptionSpec, TablePolicy } from "./policy.js";
import { reapIdle } from "./common.js";
import type { TupleScratch } from "../tuple.js";

export const ADAPTIVE_OPTIONS: readonly PolicyOptionSpec[] = [
  { name: "start", key: "start", doc: "occupancy (fraction of nf_conntrack_max) where scaling starts", default: 0.6, min: 0.01, max: 10 },
  { name: "end", key: "end", doc: "occupancy where timeouts reach zero (above start)", default: 1.2, min: 0.02, max: 20 },
];

export class AdaptivePolicy implements TablePolicy {
  readonly name = "adaptive" as const;
  readonly options: Readonly<Record<string, number | string>>;
  readonly watchFrom: number;
  readonly wantsTicks = true;
  readonly sources = null;
  readonly bytes = 0;
  level = 0;
  readonly #capacity: number;
  readonly #start: number;
  readonly #end: number;
  #scale = 1;
  readonly #limit = (_slot: number, timeoutJ: number): number => Math.floor(timeoutJ * this.#scale);

  constructor(options: Readonly<Record<string, number | string>>, capacity: number) {
    this.options = options;
    this.#start = options.start as number;
    this.#end = options.end as number;
    this.#capacity = capacity;
    this.watchFrom = capacity === 0 ? Infinity : Math.max(1, Math.floor(this.#start * capacity));
  }

  /** Validates start < end. */
  static check(options: Readonly<Record<string, number | string>>): string | null {
    return (options.start as number) < (options.end as number) ? null : `adaptive.end (${options.end}) must be above adaptive.start (${options.start})`;
  }

  get levelName(): string {
    return this.level === 0 ? "normal" : "scaling";
  }

  /** The timeout factor at the table's occupancy. */
  scaleAt(entries: number): number {
    const f = entries / this.#capacity;
    if (f < this.#start) return 1;
    return Math.max(0, (this.#end - f) / (this.#end - this.#start));
  }

  #reap(host: PolicyHost): void {
    this.#scale = this.scaleAt(host.count);
    if (this.#scale >= 1) return;
    reapIdle(host, EVICT_REASON.SCALED_TIMEOUT, 0, this.#limit);
  }

  #setLevel(host: PolicyHost, level: number): void {
    if (level === this.level) return;
    host.setLevel(level, level === 0 ? "normal" : "scaling");
    this.level = level;
  }

  admit(host: PolicyHost, t: TupleScratch): boolean {
    this.#setLevel(host, 1);
    this.#reap(host);
    if (host.count < host.capacity) return true;
    if (host.kernelEarlyDrop(t.hash)) return true;
    host.kernelTableFull();
    return false;
  }

  gc(): void {}

  tick(host: PolicyHost): void {
    if (host.count < this.watchFrom) {
      this.#setLevel(host, 0);
      return;
    }
    this.#reap(host);
  }
}
