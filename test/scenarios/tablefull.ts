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
    expected:
      "Every new flow's first packet is dropped by conntrack (drop counter, no entry, no event); early_drop finds nothing to evict; existing connections are unaffected",
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

/** Limit of the churn scenario: a quarter of it unassured, so early drop finds a victim about half the time. */
export const CHURN_MAX = 64;
/** Hosts of the churn scenario, by role (their source addresses split the kernel's counters). */
export const CHURN_HOSTS = { filler: 1, flood: 2, client: 3, server: 4 } as const;

/**
 * Appended after every other scenario (blocks stay stable): run alone, with
 * its own statistical comparison in test/kernel/tablefull.test.ts.
 */
export const tableFullChurnScenarios: Scenario[] = [
  {
    name: "tablefull-churn",
    description:
      `${CHURN_MAX} entries (48 ASSURED TCP, 16 unreplied UDP) fill the table; then 80 DNS clients (query, answer) and 40 TCP clients ` +
      "(SYN, SYN/ACK, ACK, request, ACK) alternate",
    expected:
      "Each new flow early-drops the unassured entries of the first bucket with any within 8 of its hash, or is dropped; " +
      "an answer or SYN/ACK whose request was dropped scans from its own hash and may evict (the SYN/ACK is then INVALID, " +
      "the ACK is picked up); counts vary with the per-namespace hash seed",
    tags: ["tablefull"],
    kernel: { globalLimits: { max: CHURN_MAX, hashsize: TABLEFULL_HASHSIZE }, alone: true },
    build(ctx) {
      const h = (role: number, i: number): string => ctx.v4((role << 8) | (i + 1));
      for (let i = 0; i < 48; i++) {
        new TcpConv(ctx, { client: h(CHURN_HOSTS.filler, i % 200), server: h(CHURN_HOSTS.server, 0), cport: 30000 + i, sport: 443 }).handshake();
      }
      for (let i = 0; i < 16; i++) {
        ctx.emit(buildUdp({ src: h(CHURN_HOSTS.flood, i), dst: h(CHURN_HOSTS.server, 1), sport: 31000 + i, dport: 53, payload: 30 }));
      }
      for (let i = 0; i < 120; i++) {
        const k = i >> 1;
        if ((i & 1) === 0 || k >= 40) {
          const c = h(CHURN_HOSTS.client, i % 200);
          const s = h(CHURN_HOSTS.server, 1);
          ctx.emit(buildUdp({ src: c, dst: s, sport: 32000 + i, dport: 53, payload: 30 }));
          ctx.emit(buildUdp({ src: s, dst: c, sport: 53, dport: 32000 + i, payload: 60 }));
        } else {
          new TcpConv(ctx, { client: h(CHURN_HOSTS.client, i % 200), server: h(CHURN_HOSTS.server, 0), cport: 33000 + i, sport: 80 })
            .handshake()
            .data("c", 100)
            .ack("s");
        }
      }
    },
  },
];
