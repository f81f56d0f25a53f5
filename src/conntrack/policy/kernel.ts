/**
 * `kernel`: nf_conntrack's own answer to a full table, unchanged. Beyond
 * nf_conntrack_max, __nf_conntrack_alloc calls early_drop, which scans
 * NF_CT_EVICTION_RANGE (8) buckets from the new tuple's hash and deletes the
 * non-ASSURED entries of the first bucket holding any; when it finds none the
 * packet is dropped ("table full"), and the next gc_worker runs evict
 * non-ASSURED and closing entries while the table is at least 95 % full.
 *
 * Origin: net/netfilter/nf_conntrack_core.c (early_drop, gc_worker).
 * Trade-off: costs nothing until the table is full and never touches an
 * ASSURED entry — so it never cuts a live, completed connection — but a flood
 * of completed handshakes, or orphans whose FIN/RST was lost (ASSURED,
 * ESTABLISHED for 5 days), lock the table: every new connection is dropped
 * until they time out.
 */
import type { PolicyHost, PolicyOptionSpec, TablePolicy } from "./policy.js";
import type { TupleScratch } from "../tuple.js";

export const KERNEL_OPTIONS: readonly PolicyOptionSpec[] = [];

export class KernelPolicy implements TablePolicy {
  readonly name = "kernel" as const;
  readonly options: Readonly<Record<string, number | string>> = {};
  readonly watchFrom: number;
  readonly wantsTicks = false;
  readonly sources = null;
  readonly level = 0;
  readonly levelName = "normal";
  readonly bytes = 0;

  constructor(capacity: number) {
    this.watchFrom = capacity === 0 ? Infinity : capacity;
  }

  admit(host: PolicyHost, t: TupleScratch): boolean {
    if (host.kernelEarlyDrop(t.hash)) return true;
    host.kernelTableFull();
    return false;
  }

  gc(): void {}

  tick(): void {}
}
