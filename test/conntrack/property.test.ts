/**
 * Invariants of the table under random traffic (fast-check): slots are
 * either free or live, every live entry is findable from both directions,
 * `count` matches the live entries, and the index and expiry lists stay
 * well-formed through creation, refresh, expiry, early drop and drops
 * before confirmation.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { PacketView } from "../../src/packet/view.js";
import { IPS } from "../../src/conntrack/constants.js";
import { Tracker, trackerEngine } from "../../src/conntrack/tracker.js";
import { icmpInverseType, TupleScratch } from "../../src/conntrack/tuple.js";
import { entryIds, entryOf, ManualClock } from "./helpers.js";

type Op =
  { k: "pkt"; proto: 6 | 17 | 1 | 47 | 50; a: number; b: number; sp: number; dp: number; rev: boolean; v6: boolean; drop: boolean } | { k: "tick"; ms: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      k: fc.constant("pkt" as const),
      proto: fc.constantFrom(6 as const, 17 as const, 1 as const, 47 as const, 50 as const),
      a: fc.integer({ min: 1, max: 6 }),
      b: fc.integer({ min: 1, max: 6 }),
      sp: fc.integer({ min: 1, max: 4 }),
      dp: fc.integer({ min: 1, max: 3 }),
      rev: fc.boolean(),
      v6: fc.boolean(),
      drop: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("tick" as const), ms: fc.integer({ min: 0, max: 40_000 }) }) },
);

function fill(v: PacketView, op: Extract<Op, { k: "pkt" }>): void {
  v.resetDecoded();
  v.family = op.v6 ? 6 : 4;
  const s = op.rev ? op.b : op.a;
  const d = op.rev ? op.a : op.b;
  if (op.v6) {
    v.src[0] = 0xfd000000;
    v.src[3] = s;
    v.dst[0] = 0xfd000000;
    v.dst[3] = d;
  } else {
    v.src[0] = 0x0a000000 + s;
    v.dst[0] = 0x0a000000 + d;
  }
  v.proto = op.proto === 1 && op.v6 ? 58 : op.proto;
  v.l4Ok = true;
  v.l4Len = 20;
  v.l4CapLen = 0;
  v.sport = op.rev ? op.dp : op.sp;
  v.dport = op.rev ? op.sp : op.dp;
  if (op.proto === 6) {
    // A bare ACK: picked up with tcp_loose, valid both ways.
    v.tcpFlags = 0x10;
    v.tcpHdrLen = 20;
    v.seq = 1000;
    v.ack = 2000;
    v.window = 1000;
  } else if (op.proto === 1) {
    v.icmpType = op.v6 ? (op.rev ? 129 : 128) : op.rev ? 0 : 8;
    v.icmpCode = 0;
    v.icmpId = op.sp;
  } else if (op.proto === 47) {
    v.greVersion = 0;
  }
}

function check(tr: Tracker): void {
  const engine = trackerEngine(tr);
  const tb = engine.table;
  assert.equal(tb.audit(), null);
  const live = entryIds(tr);
  const pending = engine.unconfirmed >= 0 ? 1 : 0;
  assert.equal(tb.used, live.length + pending, "slots in use = live (+ unconfirmed)");
  assert.equal(tb.free + tb.used, tb.size, "free + used = allocated slots");
  assert.ok(tb.max === 0 || tb.size <= tb.max, "never more slots than nf_conntrack_max");
  assert.equal(tr.count, live.length + pending, "count = live entries");
  assert.ok(tr.peak >= tr.count);
  const t = new TupleScratch();
  for (const s of live) {
    assert.equal(entryOf(tr, s).status & IPS.CONFIRMED, IPS.CONFIRMED);
    engine.tupleOf(s, 0, t);
    const o = [t.s0, t.s1, t.s2, t.s3, t.d0, t.d1, t.d2, t.d3, t.sport, t.dport].join();
    engine.tupleOf(s, 1, t);
    const r = [t.s0, t.s1, t.s2, t.s3, t.d0, t.d1, t.d2, t.d3, t.sport, t.dport].join();
    for (const dir of [0, 1] as const) {
      engine.tupleOf(s, dir, t);
      t.computeHash(tb.seed);
      // A tuple equal to its inverse is found as REPLY, as the kernel's chain order gives.
      const want = o === r ? 1 : dir;
      assert.deepEqual([engine.rawLookup(t), engine.foundDir], [s, want], `slot ${s} findable in direction ${dir}`);
    }
  }
}

describe("table invariants (fast-check)", () => {
  it("hold through random traffic, expiry, early drop and unconfirmed drops", () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 120 }), fc.integer({ min: 8, max: 40 }), (ops, max) => {
        const clock = new ManualClock();
        const tr = new Tracker({
          sysctls: { nf_conntrack_max: max, nf_conntrack_buckets: 8, nf_conntrack_checksum: 0 },
          clock,
          seed: 42,
          events: { onEvent() {} },
        });
        const v = new PacketView();
        for (const op of ops) {
          if (op.k === "tick") {
            clock.tick(op.ms);
            tr.advance(clock.t);
          } else {
            fill(v, op);
            const r = tr.in(v);
            if (op.drop) tr.dropUnconfirmed();
            else if (r >= 0) tr.confirm();
          }
          check(tr);
          assert.ok(tr.count <= max);
        }
      }),
      { numRuns: 150 },
    );
  });
});

describe("directional hash (hash_conntrack_raw)", () => {
  it("puts a tuple and its inverse in unrelated buckets, for every protocol and family", () => {
    const t = new TupleScratch();
    const n = 1024;
    let same = 0;
    let total = 0;
    const protos = [6, 17, 136, 132, 47, 50, 1, 58];
    for (let i = 0; i < 40000; i++) {
      const proto = protos[i % protos.length] as number;
      const v6 = (i & 8) !== 0 && proto !== 1;
      const p = v6 && proto === 1 ? 58 : proto;
      const dport = p === 1 ? 8 << 8 : p === 58 ? 128 << 8 : 1 + (i % 5000);
      t.set(v6 ? 6 : 4, p, i & 3, [0x0a000001 + i, 7, 8, 9], [0xc0000201 + (i >>> 7), 1, 2, 3], 1024 + (i % 60000), dport);
      const h = t.computeHash(77) % n;
      t.invert();
      if (t.computeHash(77) % n === h) same++;
      total++;
    }
    // Independent buckets meet with probability 1/n: about 39 of 40 000.
    assert.ok(same < 3 * (total / n), `${same} of ${total} tuples share their inverse's bucket`);
  });

  it("inverts ICMP types like the kernel's invmap", () => {
    assert.equal(icmpInverseType(1, 8), 0);
    assert.equal(icmpInverseType(1, 0), 8);
    assert.equal(icmpInverseType(1, 17), 18);
    assert.equal(icmpInverseType(1, 3), -1);
    assert.equal(icmpInverseType(58, 128), 129);
    assert.equal(icmpInverseType(58, 140), 139);
    assert.equal(icmpInverseType(58, 8), -1);
  });

  it("spreads tuples over the buckets (no symmetric collapse)", () => {
    const t = new TupleScratch();
    const n = 1024;
    const counts = new Uint32Array(n);
    for (let i = 0; i < 64 * n; i++) {
      t.set(4, 6, 0, [0x0a000001 + (i % 251)], [0xc0000201], 1024 + i, 443);
      const b = t.computeHash(99) % n;
      counts[b] = (counts[b] as number) + 1;
    }
    const max = Math.max(...counts);
    assert.ok(max < 64 * 2, `fullest bucket holds ${max} (mean 64)`);
  });
});
