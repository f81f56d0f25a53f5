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

/** The bucket the tracker puts UDP A:sport → B:dport in. */
function bucketOf(tr: Tracker, sport: number, dport = 53): number {
  t.set(4, 17, 0, [A], [B], sport, dport);
  return t.computeHash(trackerEngine(tr).table.seed) % trackerEngine(tr).table.buckets;
}

/** Source ports whose UDP tuple to B:53 lands in one of `want` (and none in `avoid`). */
function portsIn(tr: Tracker, n: number, want: (b: number) => boolean, from = 1024): number[] {
  const out: number[] = [];
  for (let p = from; out.length < n && p < 65536; p++) if (want(bucketOf(tr, p))) out.push(p);
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

  it("early-drops the unassured entries of the first bucket pair that has any, within 8 pairs of the new tuple", () => {
    const { tr, clock, events } = rig({ sysctls: { nf_conntrack_max: 6, nf_conntrack_buckets: 512 } });
    const n = trackerEngine(tr).table.buckets;
    const newPort = 40000;
    const b0 = bucketOf(tr, newPort);
    const pair3 = (b: number): boolean => b === (b0 + 6) % n || b === (b0 + 7) % n;
    const far = (b: number): boolean => (b - b0 + n) % n >= 16;
    // Two assured entries in pair 0 (spared), two unassured in pair 3 (victims), two unassured far away.
    const assuredPorts = portsIn(tr, 2, (b) => b === b0 || b === (b0 + 1) % n);
    const victims = portsIn(tr, 2, pair3);
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
    for (const p of victims) assert.ok(destroyed.some((l) => l.includes(`sport=${p} dport=53 [UNREPLIED]`)), String(p));
    assert.match(events.lines[2] ?? "", /^ {4}\[NEW\] udp {6}17 30 src=10\.0\.0\.1 dst=10\.0\.0\.2 sport=40000/);
  });

  it("finds nothing to evict beyond the 16 buckets scanned", () => {
    const { tr, logs } = rig({ sysctls: { nf_conntrack_max: 4, nf_conntrack_buckets: 512 } });
    const n = trackerEngine(tr).table.buckets;
    const b0 = bucketOf(tr, 40000);
    for (const p of portsIn(tr, 4, (b) => (b - b0 + n) % n >= 16)) tr.process(udpFast(v, A, B, p, 53));
    assert.equal(tr.process(udpFast(v, A, B, 40000, 53)), CT_DROPPED);
    assert.equal(tr.stats.early_drop, 0);
    assert.equal(logs.length, 1);
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
    const ports = portsIn(tr, 100, (b) => (b - b0 + n) % n >= 16);
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
    assure(tr, clock, portsIn(tr, 20, (b) => (b - b0 + n) % n >= 16));
    assert.equal(tr.process(udpFast(v, A, B, 50000, 53)), CT_DROPPED);
    clock.tick(120_000);
    tr.advance(clock.t);
    assert.equal(events.lines.filter((l) => l.startsWith("[DESTROY]")).length, 0);
    assert.equal(tr.count, 20);
  });
});

describe("chain length limit (__nf_conntrack_confirm)", () => {
  it("refuses insertion into a chain longer than 50–79 entries: chaintoolong, insert_failed, drop", () => {
    const { tr } = rig({ sysctls: { nf_conntrack_max: 4096, nf_conntrack_buckets: 512 } });
    const target = bucketOf(tr, 1024);
    const ports = portsIn(tr, 120, (b) => b === target);
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
});
