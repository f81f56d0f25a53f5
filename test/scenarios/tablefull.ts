/**
 * Table-full scenarios: run alone with a small GLOBAL nf_conntrack_max and
 * the smallest hash table (512 buckets), so that allocation hits the limit.
 *
 * Which entry early_drop() evicts depends on the kernel's per-boot hash
 * seed, so only the first scenario (all entries ASSURED, nothing evictable)
 * is deterministic; the second is compared by invariants (see
 * test/kernel/tablefull.test.ts).
 */
import { buildUdp } from "../../src/packet/build.js";
import { TcpConv } from "./dsl.js";
import type { Scenario } from "./types.js";

/** The limit used by both scenarios. */
export const TABLEFULL_MAX = 32;
/** The smallest hash size the kernel accepts (one page of bucket heads). */
export const TABLEFULL_HASHSIZE = 512;

export const tableFullScenarios: Scenario[] = [
  {
    name: "tablefull-assured",
    description: `${TABLEFULL_MAX} ASSURED TCP connections fill the table, then 8 new SYNs and 4 new UDP flows arrive, then the existing connections carry on`,
    expected: "Every new flow's first packet is dropped by conntrack (drop counter, no entry, no event); early_drop finds nothing to evict; existing connections are unaffected",
    tags: ["tablefull"],
    kernel: { globalLimits: { max: TABLEFULL_MAX, hashsize: TABLEFULL_HASHSIZE }, alone: true },
    build(ctx) {
      const convs: TcpConv[] = [];
      for (let i = 0; i < TABLEFULL_MAX; i++) {
        const c = new TcpConv(ctx, { client: ctx.v4(1), server: ctx.v4(2), cport: 41000 + i, sport: 80 });
        c.handshake().data("c", 10).ack("s");
        convs.push(c);
      }
      for (let i = 0; i < 8; i++) {
        new TcpConv(ctx, { client: ctx.v4(1), server: ctx.v4(2), cport: 42000 + i, sport: 80 }).syn("c");
      }
      for (let i = 0; i < 4; i++) {
        ctx.emit(buildUdp({ src: ctx.v4(1), dst: ctx.v4(3), sport: 43000 + i, dport: 53, payload: 30 }));
      }
      for (const c of convs.slice(0, 8)) c.data("s", 10).ack("c");
    },
  },
  {
    name: "tablefull-early-drop",
    description: `${TABLEFULL_MAX} unreplied UDP flows fill the table, then 24 more new UDP flows and 4 ASSURED-to-be TCP handshakes arrive`,
    expected: "Each new flow either evicts unassured entries near its hash bucket (early_drop) or is dropped (drop); the table never exceeds the limit",
    tags: ["tablefull"],
    kernel: { globalLimits: { max: TABLEFULL_MAX, hashsize: TABLEFULL_HASHSIZE }, alone: true },
    build(ctx) {
      for (let i = 0; i < TABLEFULL_MAX; i++) {
        ctx.emit(buildUdp({ src: ctx.v4(1), dst: ctx.v4(2), sport: 44000 + i, dport: 53, payload: 30 }));
      }
      for (let i = 0; i < 24; i++) {
        ctx.emit(buildUdp({ src: ctx.v4(1), dst: ctx.v4(3), sport: 45000 + i, dport: 53, payload: 30 }));
      }
      for (let i = 0; i < 4; i++) {
        new TcpConv(ctx, { client: ctx.v4(1), server: ctx.v4(4), cport: 46000 + i, sport: 80 }).handshake();
      }
    },
  },
];
