import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { PacketView } from "../../src/packet/view.js";
import { CT_STATE, IPS } from "../../src/conntrack/constants.js";
import { INVALID_REASON } from "../../src/conntrack/stats.js";
import { CT_DROPPED } from "../../src/conntrack/tracker.js";
import type { Tracker } from "../../src/conntrack/tracker.js";
import { TupleScratch } from "../../src/conntrack/tuple.js";
import { entryIds, entryOf, ip4, rig, udpFast } from "./helpers.js";
import { trackerEngine } from "../../src/conntrack/tracker.js";

const A = ip4("10.0.0.1");
const B = ip4("10.0.0.2");
const v = new PacketView();
const t = new TupleScratch();

/** The bucket of the UDP tuple src:sport → dst:dport (the node of that direction). */
function bucketOf(tr: Tracker, sport: number, dport = 53, src = A, dst = B): number {
  t.set(4, 17, 0, [src], [dst], sport, dport);
  return t.computeHash(trackerEngine(tr).table.seed) % trackerEngine(tr).table.buckets;
}

/**
 * Source ports whose entry UDP A:port → B:53 has its original node in a
 * bucket `want` accepts and its reply node in one `reply` accepts.
 */
function portsIn(tr: Tracker, n: number, want: (b: number) => boolean, reply: (b: number) => boolean = want, from = 1024): number[] {
  const out: number[] = [];
  for (let p = from; out.length < n && p < 65536; p++) {
    if (want(bucketOf(tr, p)) && reply(bucketOf(tr, 53, p, B, A))) out.push(p);
  }
  if (out.length < n) throw new Error("not enough ports");
  return out;
}

/** Makes UDP A:port → B:53 ASSURED (reply, then a packet after 2 s). */
function assure(tr: Tracker, clock: { tick(ms: number): void }, ports: number[]): void {
  for (const p of ports) tr.process(udpFast(v, A, B, p, 53));
  for (const p of ports) tr.process(udpFast(v, B, A, 53, p));
  clock.tick(2100);
  for (const p of ports) tr.process(udpFast(v, A, B, p, 53));
}

describe("table full (__nf_conntrack_alloc, early_drop)", () => {
  it("drops the packet, counts `drop`, logs rate-limited and keeps existing flows when nothing can be evicted", () => {
    const { tr, clock, logs } = rig({ sysctls: { nf_conntrack_max: 8, nf_conntrack_buckets: 512 } });
    const ports = [1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007];
    assure(tr, clock, ports);
    assert.equal(tr.count, 8);
    for (const s of entryIds(tr)) assert.equal(entryOf(tr, s).status & IPS.ASSURED, IPS.ASSURED);
    const before = tr.memoryBytes;
    for (let i = 0; i < 12; i++) {
      assert.equal(tr.process(udpFast(v, A, B, 2000 + i, 53)), CT_DROPPED);
      assert.equal(tr.result.dropped, true);
      assert.equal(tr.result.invalidReason, INVALID_REASON.TABLE_FULL);
    }
    assert.equal(tr.stats.drop, 12);
    assert.equal(tr.stats.early_drop, 0);
    assert.equal(tr.stats.invalid, 0);
    assert.equal(tr.count, 8);
    assert.equal(tr.peak, 8);
    assert.equal(tr.memoryBytes, before);
    // net_ratelimit: a burst of 10, then silence for 5 s.
    assert.deepEqual(logs, Array(10).fill("nf_conntrack: nf_conntrack: table full, dropping packet"));
    // Existing flows go on.
    assert.equal(tr.process(udpFast(v, A, B, 1003, 53)), CT_STATE.ESTABLISHED);
    clock.tick(5004);
    assert.equal(tr.process(udpFast(v, A, B, 3000, 53)), CT_DROPPED);
    assert.deepEqual(logs.slice(10), ["net_ratelimit: 2 callbacks suppressed", "nf_conntrack: nf_conntrack: table full, dropping packet"]);
  });

  it("early-drops the unassured entries of the first bucket that has any, within 8 buckets of the new tuple's hash", () => {
    const { tr, clock, events } = rig({ sysctls: { nf_conntrack_max: 6, nf_conntrack_buckets: 512 } });
    const n = trackerEngine(tr).table.buckets;
    const newPort = 40000;
    const b0 = bucketOf(tr, newPort);
    const far = (b: number): boolean => (b - b0 + n) % n >= 8;
    // Two assured entries in bucket 0 (spared), two unassured whose reply node is in bucket 3 (victims), two far away.
    const assuredPorts = portsIn(tr, 2, (b) => b === b0, far);
    const victims = portsIn(tr, 2, far, (b) => b === (b0 + 3) % n);
    const others = portsIn(tr, 2, far);
    assure(tr, clock, assuredPorts);
    for (const p of [...victims, ...others]) tr.process(udpFast(v, A, B, p, 53));
    assert.equal(tr.count, 6);
    events.lines.length = 0;
    assert.equal(tr.process(udpFast(v, A, B, newPort, 53)), CT_STATE.NEW);
    assert.equal(tr.stats.early_drop, 2);
    assert.equal(tr.stats.drop, 0);
    assert.equal(tr.count, 5);
    const destroyed = events.lines.filter((l) => l.startsWith("[DESTROY]"));
    assert.equal(destroyed.length, 2);
    for (const p of victims)
      assert.ok(
        destroyed.some((l) => l.includes(`sport=${p} dport=53 [UNREPLIED]`)),
        String(p),
      );
    assert.match(events.lines[2] ?? "", /^ {4}\[NEW\] udp {6}17 30 src=10\.0\.0\.1 dst=10\.0\.0\.2 sport=40000/);
  });

  it("finds nothing to evict beyond the 8 buckets scanned", () => {
    const { tr, logs } = rig({ sysctls: { nf_conntrack_max: 4, nf_conntrack_buckets: 512 } });
    const n = trackerEngine(tr).table.buckets;
    const b0 = bucketOf(tr, 40000);
    // Nodes right behind the window (bucket b0 + 8) and right before it (b0 − 1) are not seen.
    const ports = [
      ...portsIn(
        tr,
        2,
        (b) => b === (b0 + 8) % n,
        (b) => (b - b0 + n) % n >= 8,
      ),
      ...portsIn(
        tr,
        2,
        (b) => b === (b0 + n - 1) % n,
        (b) => (b - b0 + n) % n >= 8,
      ),
    ];
    for (const p of ports) tr.process(udpFast(v, A, B, p, 53));
    assert.equal(tr.count, 4);
    assert.equal(tr.process(udpFast(v, A, B, 40000, 53)), CT_DROPPED);
    assert.equal(tr.stats.early_drop, 0);
    assert.equal(logs.length, 1);
  });

  it("starts from the packet's own direction: an answer whose query was dropped scans other buckets and may evict", () => {
    const { tr } = rig({ sysctls: { nf_conntrack_max: 4, nf_conntrack_buckets: 512 } });
    const n = trackerEngine(tr).table.buckets;
    const qPort = 40000;
    const bq = bucketOf(tr, qPort); // the query A:40000 → B:53
    const ba = bucketOf(tr, 53, qPort, B, A); // the answer B:53 → A:40000
    assert.ok((ba - bq + n) % n >= 8 && (bq - ba + n) % n >= 8, "seed 12345 puts query and answer far apart");
    const farFromQuery = (b: number): boolean => (b - bq + n) % n >= 8;
    // Four unassured entries: three far from both, one with its original node in the answer's bucket.
    const near = portsIn(tr, 1, (b) => b === ba, farFromQuery);
    const far = portsIn(
      tr,
      3,
      (b) => farFromQuery(b) && (b - ba + n) % n >= 8,
      (b) => farFromQuery(b) && (b - ba + n) % n >= 8,
    );
    for (const p of [...near, ...far]) tr.process(udpFast(v, A, B, p, 53));
    assert.equal(tr.count, 4);
    // The query finds nothing to evict near its own hash and is dropped …
    assert.equal(tr.process(udpFast(v, A, B, qPort, 53)), CT_DROPPED);
    assert.equal(tr.stats.early_drop, 0);
    // … the answer (a new entry B:53 → A:40000) scans from its hash and evicts the neighbour.
    assert.equal(tr.process(udpFast(v, B, A, 53, qPort)), CT_STATE.NEW);
    assert.equal(tr.stats.early_drop, 1);
    assert.equal(tr.count, 4);
  });
});

describe("GC worker eviction after a table-full drop (gc_worker, nf_conntrack_max95)", () => {
  it("evicts unassured entries at its next run until the table is below 95 %, then stops", () => {
    const { tr, clock, events } = rig({
      sysctls: { nf_conntrack_max: 100, nf_conntrack_buckets: 512, nf_conntrack_udp_timeout: 3600 },
    });
    const n = trackerEngine(tr).table.buckets;
    const newPort = 50000;
    const b0 = bucketOf(tr, newPort);
    const ports = portsIn(tr, 100, (b) => (b - b0 + n) % n >= 8);
    for (const p of ports) tr.process(udpFast(v, A, B, p, 53));
    clock.tick(2000);
    assert.equal(tr.process(udpFast(v, A, B, newPort, 53)), CT_DROPPED);
    const destroys = (): number => events.lines.filter((l) => l.startsWith("[DESTROY]")).length;
    // The worker ran 1 s after start and rescheduled itself ~60 s later (average of clamped timeouts).
    clock.tick(30_000);
    tr.advance(clock.t);
    assert.equal(destroys(), 0);
    clock.tick(30_000);
    tr.advance(clock.t);
    // 100 → 94: it kills while count ≥ 95.
    assert.equal(destroys(), 6);
    assert.equal(tr.count, 94);
    // The flag is cleared: later runs evict nothing more.
    clock.tick(300_000);
    tr.advance(clock.t);
    assert.equal(destroys(), 6);
    assert.equal(tr.process(udpFast(v, A, B, newPort, 53)), CT_STATE.NEW);
  });

  it("spares ASSURED entries unless their protocol says they may go", () => {
    const { tr, clock, events } = rig({
      sysctls: { nf_conntrack_max: 20, nf_conntrack_buckets: 512, nf_conntrack_udp_timeout_stream: 3600 },
    });
    const n = trackerEngine(tr).table.buckets;
    const b0 = bucketOf(tr, 50000);
    assure(
      tr,
      clock,
      portsIn(tr, 20, (b) => (b - b0 + n) % n >= 8),
    );
    assert.equal(tr.process(udpFast(v, A, B, 50000, 53)), CT_DROPPED);
    clock.tick(120_000);
    tr.advance(clock.t);
    assert.equal(events.lines.filter((l) => l.startsWith("[DESTROY]")).length, 0);
    assert.equal(tr.count, 20);
  });
});

describe("chain length limit (__nf_conntrack_confirm)", () => {
  for (const chain of ["original", "reply"] as const) {
    it(`refuses insertion into a chain longer than 50–79 nodes: chaintoolong, insert_failed, drop (the ${chain} tuple's chain)`, () => {
      const { tr } = rig({ sysctls: { nf_conntrack_max: 4096, nf_conntrack_buckets: 512 } });
      const target = bucketOf(tr, 1024);
      const at = (b: number): boolean => b === target;
      const not = (b: number): boolean => b !== target;
      const ports = chain === "original" ? portsIn(tr, 120, at, not) : portsIn(tr, 120, not, at);
      let inserted = 0;
      let firstFailure = -1;
      for (const p of ports) {
        const r = tr.process(udpFast(v, A, B, p, 53));
        if (r === CT_DROPPED) {
          if (firstFailure < 0) firstFailure = inserted;
          assert.equal(tr.result.invalidReason, INVALID_REASON.INSERT_FAILED);
        } else {
          inserted++;
        }
      }
      assert.ok(firstFailure >= 51 && firstFailure <= 81, `first failure at chain length ${firstFailure}`);
      assert.ok(inserted <= 81);
      assert.equal(tr.stats.chaintoolong, ports.length - inserted);
      assert.equal(tr.stats.insert_failed, ports.length - inserted);
      assert.equal(tr.count, inserted);
      assert.equal(trackerEngine(tr).table.chainLength(target), inserted);
    });
  }
});
