import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { buildIp, buildTcp, buildUdp, fragment } from "../../src/packet/build.js";
import { DEFRAG, Defragmenter } from "../../src/packet/defrag.js";
import type { DefragOptions } from "../../src/packet/defrag.js";
import { decode } from "./helpers.js";

const A4 = { src: "10.0.0.1", dst: "10.0.0.2" };
const A6 = { src: "fd00::1", dst: "fd00::2" };

interface Out {
  verdict: number;
  bytes: Uint8Array | null;
  linkType: number;
  family: number;
  proto: number;
  sport: number;
  l4Ok: boolean;
  vlan: number;
  reassembled: boolean;
}

/** Feeds frames (at the given times in ms) and records each verdict, with the datagram when one completes. */
function feed(d: Defragmenter, frames: Array<Uint8Array | [Uint8Array, number]>): Out[] {
  return frames.map((x) => {
    const [f, t] = Array.isArray(x) ? x : [x, 0];
    const v = decode(f);
    const verdict = d.offer(v, t);
    return {
      verdict,
      bytes: verdict === DEFRAG.REASSEMBLED ? v.data.slice(v.frameOff, v.frameOff + v.capLen) : null,
      linkType: v.linkType,
      family: v.family,
      proto: v.proto,
      sport: v.sport,
      l4Ok: v.l4Ok,
      vlan: v.vlan,
      reassembled: v.reassembled,
    };
  });
}

function verdicts(o: Out[]): number[] {
  return o.map((x) => x.verdict);
}

const { PASS, STOLEN, REASSEMBLED } = DEFRAG;

/** Hand-made IPv4 fragment: `data` bytes at byte offset `off`. */
function frag4(
  off: number,
  len: number,
  mf: boolean,
  opts: { id?: number; fill?: number; tos?: number; df?: boolean; proto?: number; vlan?: number[] } = {},
): Uint8Array {
  return buildIp(
    {
      ...A4,
      id: opts.id ?? 1,
      fragOffset: off,
      mf,
      ...(opts.tos === undefined ? {} : { tos: opts.tos }),
      ...(opts.df === undefined ? {} : { df: opts.df }),
      ...(opts.vlan === undefined ? {} : { vlan: opts.vlan }),
    },
    opts.proto ?? 17,
    new Uint8Array(len).fill(opts.fill ?? off & 0xff),
  );
}

function frag6(off: number, len: number, more: boolean, opts: { id?: number; fill?: number; tc?: number } = {}): Uint8Array {
  return buildIp(
    { ...A6, extHeaders: [{ type: "fragment", offset: off, more, id: opts.id ?? 1 }], ...(opts.tc === undefined ? {} : { tos: opts.tc }) },
    17,
    new Uint8Array(len).fill(opts.fill ?? off & 0xff),
  );
}

function permutations<T>(xs: T[]): T[][] {
  if (xs.length <= 1) return [xs];
  const out: T[][] = [];
  xs.forEach((x, i) => {
    for (const p of permutations([...xs.slice(0, i), ...xs.slice(i + 1)])) out.push([x, ...p]);
  });
  return out;
}

describe("Defragmenter IPv4", () => {
  const whole = buildUdp({ ...A4, sport: 4000, dport: 53, id: 0x77, payload: 3000, ttl: 9 });
  const frags = fragment(whole, 1000);

  it("passes whole packets untouched", () => {
    const d = new Defragmenter();
    const o = feed(d, [whole]);
    assert.deepEqual(verdicts(o), [PASS]);
    assert.equal(o[0]?.reassembled, false);
    assert.equal(d.summary().fragments, 0);
  });

  it("reassembles in any order into exactly the original datagram", () => {
    assert.equal(frags.length, 4);
    for (const order of permutations(frags)) {
      const d = new Defragmenter();
      const o = feed(d, order);
      assert.deepEqual(verdicts(o), [STOLEN, STOLEN, STOLEN, REASSEMBLED]);
      const r = o[3] as Out;
      assert.deepEqual(r.bytes, whole.subarray(14));
      assert.deepEqual([r.linkType, r.family, r.proto, r.sport, r.l4Ok, r.reassembled], [228, 4, 17, 4000, true, true]);
      const s = d.summary();
      assert.deepEqual([s.fragments, s.reassembled, s.held, s.queues, s.memory], [4, 1, 0, 0, 0]);
    }
  });

  it("keeps the VLAN of the frames and decodes the transport header of the datagram", () => {
    const tcp = buildTcp({ ...A4, sport: 80, dport: 9, flags: "PA", payload: 200, vlan: [12] });
    const o = feed(new Defragmenter(), fragment(tcp, 60));
    const r = o[o.length - 1] as Out;
    assert.deepEqual([r.verdict, r.vlan, r.sport, r.l4Ok, r.proto], [REASSEMBLED, 12, 80, true, 6]);
  });

  it("takes headers from the first fragment; DF only when the largest fragment had it; CE kept", () => {
    const o = feed(new Defragmenter(), [frag4(8, 8, false, { tos: 0x02, df: true }), frag4(0, 8, true, { tos: 0x03, df: true })]);
    const b = (o[1] as Out).bytes as Uint8Array;
    assert.deepEqual([b[1], b[6], (b[2] as number) * 256 + (b[3] as number)], [0x03, 0x40, 36]);
    const mixed = feed(new Defragmenter(), [frag4(0, 16, true, { df: false }), frag4(16, 8, false, { df: true })]);
    assert.equal(((mixed[1] as Out).bytes as Uint8Array)[6], 0);
  });

  it("drops a datagram whose fragments mix Not-ECT with ECT/CE", () => {
    const d = new Defragmenter();
    assert.deepEqual(verdicts(feed(d, [frag4(0, 8, true, { tos: 0 }), frag4(8, 8, false, { tos: 3 })])), [STOLEN, STOLEN]);
    assert.equal(d.summary().dropped.ecn, 2);
  });

  it("duplicates are dropped and the queue kept; duplicates are judged against runs", () => {
    let d = new Defragmenter();
    const [a, b, c, e] = frags as [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
    assert.deepEqual(verdicts(feed(d, [a, b, a, c, b, e])), [STOLEN, STOLEN, STOLEN, STOLEN, STOLEN, REASSEMBLED]);
    assert.equal(d.summary().dropped.duplicate, 2);
    // In order, [0,8) and [8,16) form one run: [4,12) lies inside it, a duplicate.
    d = new Defragmenter();
    assert.deepEqual(
      verdicts(feed(d, [frag4(0, 8, true), frag4(8, 8, true), frag4(8, 8, true, { fill: 9 }), buildIp({ ...A4, id: 1, fragOffset: 0, mf: true }, 17, 16)])),
      [STOLEN, STOLEN, STOLEN, STOLEN],
    );
    assert.equal(d.summary().dropped.duplicate, 2);
    assert.deepEqual(verdicts(feed(d, [frag4(16, 8, false)])), [REASSEMBLED]);
    // Out of order the same bytes are two runs: a fragment spanning both is an overlap.
    d = new Defragmenter();
    assert.deepEqual(verdicts(feed(d, [frag4(8, 8, true), frag4(0, 8, true), buildIp({ ...A4, id: 1, fragOffset: 0, mf: true }, 17, 16)])), [
      STOLEN,
      STOLEN,
      STOLEN,
    ]);
    assert.equal(d.summary().dropped.overlap, 3);
    assert.equal(d.summary().queues, 0);
  });

  it("an overlap discards the whole queue", () => {
    const d = new Defragmenter();
    const o = feed(d, [frag4(0, 16, true), frag4(8, 16, true), frag4(24, 8, false), frag4(16, 8, true)]);
    assert.deepEqual(verdicts(o), [STOLEN, STOLEN, STOLEN, STOLEN]);
    const s = d.summary();
    assert.equal(s.dropped.overlap, 2);
    // The later fragments started a fresh queue that misses its head.
    assert.deepEqual([s.queues, s.held], [1, 2]);
  });

  it("length errors discard the queue: short last fragment, conflicting ends, data beyond the end, empty", () => {
    let d = new Defragmenter();
    feed(d, [frag4(0, 16, true), frag4(8, 0, false)]);
    assert.deepEqual([d.summary().dropped["bad-length"], d.summary().queues], [2, 0]);
    d = new Defragmenter();
    feed(d, [frag4(16, 8, false), frag4(24, 8, false)]);
    assert.deepEqual([d.summary().dropped["bad-length"], d.summary().queues], [2, 0]);
    d = new Defragmenter();
    feed(d, [frag4(16, 8, false), frag4(24, 8, true)]);
    assert.equal(d.summary().dropped["bad-length"], 2);
    d = new Defragmenter();
    feed(d, [frag4(0, 4, true)]);
    assert.deepEqual([d.summary().dropped["bad-length"], d.summary().queues], [1, 0]);
  });

  it("trims a non-last fragment to a multiple of 8", () => {
    const d = new Defragmenter();
    const o = feed(d, [frag4(0, 13, true, { fill: 1 }), frag4(8, 8, false, { fill: 2 })]);
    assert.deepEqual(verdicts(o), [STOLEN, REASSEMBLED]);
    const b = (o[1] as Out).bytes as Uint8Array;
    assert.equal(b.length, 36);
    assert.deepEqual([...b.subarray(20)], [...new Array<number>(8).fill(1), ...new Array<number>(8).fill(2)]);
  });

  it("keys queues by source, destination, id and protocol", () => {
    const d = new Defragmenter();
    const o = feed(d, [frag4(0, 8, true, { proto: 17 }), frag4(0, 8, true, { proto: 6 }), frag4(8, 8, false, { proto: 6 }), frag4(0, 8, true, { id: 2 })]);
    assert.deepEqual(verdicts(o), [STOLEN, STOLEN, REASSEMBLED, STOLEN]);
    assert.equal(d.summary().queues, 2);
  });

  it("times out queues after ipfrag_time, counted from the first fragment", () => {
    const d = new Defragmenter();
    // The second fragment at 20 s does not extend the deadline of 30 s.
    let o = feed(d, [
      [frag4(0, 8, true), 0],
      [frag4(8, 8, true), 20_000],
      [frag4(16, 8, false), 30_000],
    ]);
    assert.deepEqual(verdicts(o), [STOLEN, STOLEN, STOLEN]);
    let s = d.summary();
    assert.deepEqual([s.timedOutQueues, s.dropped.timeout, s.held, s.queues], [1, 2, 1, 1]);
    const d2 = new Defragmenter({ ipv4Timeout: 5 });
    o = feed(d2, [
      [frag4(0, 8, true), 1000],
      [frag4(8, 8, false), 5999],
    ]);
    assert.deepEqual(verdicts(o), [STOLEN, REASSEMBLED]);
    d2.expire(1e9);
    s = d2.summary();
    assert.equal(s.timedOutQueues, 0);
  });

  it("refuses fragments while memory is above the high threshold", () => {
    const d = new Defragmenter({ ipv4HighThresh: 10_000 });
    const out: number[] = [];
    for (let id = 1; id <= 20; id++) out.push(d.offer(decode(frag4(0, 1000, true, { id })), 0));
    const s = d.summary();
    assert.ok(s.dropped.memory > 0);
    assert.ok(s.memory > 10_000 && s.memory < 10_000 + 3000);
    assert.equal(s.held + s.dropped.memory, 20);
    // Expiry frees the memory and new work is accepted again.
    assert.equal(d.offer(decode(frag4(0, 8, true, { id: 99 })), 40_000), STOLEN);
    assert.deepEqual([d.summary().held, d.summary().queues], [1, 1]);
  });

  it("restarts a queue when more than ipfrag_max_dist fragments of its source came in between", () => {
    const d = new Defragmenter();
    // rid advances once per fragment of the source: 64 others in between make a distance of 65.
    feed(d, [frag4(0, 8, true, { id: 1 })]);
    for (let id = 2; id <= 65; id++) feed(d, [frag4(0, 8, true, { id })]);
    const o = feed(d, [frag4(8, 8, false, { id: 1 })]);
    assert.deepEqual(verdicts(o), [STOLEN]);
    assert.equal(d.summary().dropped["too-far"], 1);
    // 63 in between (distance 64) is still fine.
    const e = new Defragmenter();
    feed(e, [frag4(0, 8, true, { id: 1 })]);
    for (let id = 2; id <= 64; id++) feed(e, [frag4(0, 8, true, { id })]);
    assert.deepEqual(verdicts(feed(e, [frag4(8, 8, false, { id: 1 })])), [REASSEMBLED]);
    const off = new Defragmenter({ ipv4MaxDist: 0 });
    feed(off, [frag4(0, 8, true, { id: 1 })]);
    for (let id = 2; id <= 200; id++) feed(off, [frag4(0, 8, true, { id })]);
    assert.deepEqual(verdicts(feed(off, [frag4(8, 8, false, { id: 1 })])), [REASSEMBLED]);
  });

  it("drops datagrams over 65535 bytes", () => {
    const d = new Defragmenter();
    const o = feed(d, [frag4(0, 65000, true), frag4(65000, 528, true), frag4(65528, 20, false)]);
    assert.deepEqual(verdicts(o), [STOLEN, STOLEN, STOLEN]);
    assert.equal(d.summary().dropped.oversize, 3);
  });

  it("drops fragments whose data was not captured", () => {
    const d = new Defragmenter();
    const f = frag4(0, 100, true);
    const v = decode(f.subarray(0, 60), 1, { wireLen: f.length });
    assert.equal(d.offer(v, 0), STOLEN);
    assert.equal(d.summary().dropped.truncated, 1);
  });
});

describe("Defragmenter IPv6", () => {
  const whole = buildUdp({ ...A6, sport: 5353, dport: 53, payload: 3000, extHeaders: [{ type: "hop" }] });
  const frags = fragment(whole, 1280, { id: 42 });

  it("reassembles in any order into the original packet, fragment header removed", () => {
    for (const order of permutations(frags)) {
      const d = new Defragmenter();
      const o = feed(d, order);
      assert.deepEqual(verdicts(o), [STOLEN, STOLEN, REASSEMBLED]);
      const r = o[2] as Out;
      assert.deepEqual(r.bytes, whole.subarray(14));
      assert.deepEqual([r.linkType, r.family, r.proto, r.sport, r.l4Ok], [229, 6, 17, 5353, true]);
    }
  });

  it("turns an atomic fragment into the plain packet at once", () => {
    const atomic = buildUdp({ ...A6, sport: 1, dport: 2, payload: 10, extHeaders: [{ type: "fragment", offset: 0, more: false, id: 9 }] });
    const plain = buildUdp({ ...A6, sport: 1, dport: 2, payload: 10 });
    const d = new Defragmenter();
    const o = feed(d, [atomic]);
    assert.deepEqual(verdicts(o), [REASSEMBLED]);
    assert.deepEqual(o[0]?.bytes, plain.subarray(14));
    assert.equal(d.summary().queues, 0);
  });

  it("keys queues by addresses and id only, times out after nf_conntrack_frag6_timeout", () => {
    const d = new Defragmenter();
    let o = feed(d, [
      [frag6(0, 16, true), 0],
      [frag6(16, 8, false), 59_999],
    ]);
    assert.deepEqual(verdicts(o), [STOLEN, REASSEMBLED]);
    o = feed(d, [
      [frag6(0, 16, true), 100_000],
      [frag6(16, 8, false), 160_000],
    ]);
    assert.deepEqual(verdicts(o), [STOLEN, STOLEN]);
    assert.equal(d.summary().timedOutQueues, 1);
  });

  it("overlaps discard the queue; length errors drop only the fragment", () => {
    let d = new Defragmenter();
    feed(d, [frag6(0, 16, true), frag6(8, 16, false)]);
    assert.deepEqual([d.summary().dropped.overlap, d.summary().queues], [2, 0]);
    d = new Defragmenter();
    assert.deepEqual(verdicts(feed(d, [frag6(0, 16, true), frag6(8, 0, false), frag6(16, 8, false)])), [STOLEN, STOLEN, REASSEMBLED]);
    assert.equal(d.summary().dropped["bad-length"], 1);
    d = new Defragmenter();
    assert.deepEqual(verdicts(feed(d, [frag6(0, 16, true), frag6(0, 16, true), frag6(16, 8, false)])), [STOLEN, STOLEN, REASSEMBLED]);
    assert.equal(d.summary().dropped.duplicate, 1);
  });

  it("lets a misaligned non-last fragment through and kills its queue", () => {
    const d = new Defragmenter();
    const o = feed(d, [frag6(0, 16, true), frag6(16, 12, true)]);
    assert.deepEqual(verdicts(o), [STOLEN, PASS]);
    assert.equal(o[1]?.reassembled, false);
    const s = d.summary();
    assert.deepEqual([s.passed, s.queues, s.held, s.dropped["bad-length"]], [1, 0, 0, 1]);
  });

  it("lets a first fragment without its whole transport header through (RFC 8200 4.5)", () => {
    const d = new Defragmenter();
    const cut = buildIp({ ...A6, extHeaders: [{ type: "fragment", offset: 0, more: true, id: 3 }] }, 6, 16);
    const o = feed(d, [cut]);
    assert.deepEqual(verdicts(o), [PASS]);
    assert.deepEqual([d.summary().passed, d.summary().queues], [1, 0]);
    // A non-first fragment is never "truncated".
    assert.deepEqual(verdicts(feed(d, [buildIp({ ...A6, extHeaders: [{ type: "fragment", offset: 16, more: false, id: 3 }] }, 6, 4)])), [STOLEN]);
  });

  it("passes jumbograms and fragment headers behind a transport header untouched", () => {
    const d = new Defragmenter();
    const f = frag6(0, 16, true);
    f[14 + 4] = 0;
    f[14 + 5] = 0;
    const v = decode(f, 1, { wireLen: f.length });
    assert.equal(d.offer(v, 0), PASS);
    assert.equal(d.summary().fragments, 0);
  });

  it("combines ECN into the traffic class", () => {
    const o = feed(new Defragmenter(), [frag6(0, 16, true, { tc: 0x03 }), frag6(16, 8, false, { tc: 0x02 })]);
    const b = (o[1] as Out).bytes as Uint8Array;
    assert.equal((((b[0] as number) & 0x0f) << 4) | ((b[1] as number) >> 4), 0x03);
  });

  it("respects its own memory threshold", () => {
    const opts: DefragOptions = { ipv6HighThresh: 5000 };
    const d = new Defragmenter(opts);
    for (let id = 1; id <= 20; id++) d.offer(decode(frag6(0, 800, true, { id })), 0);
    assert.ok(d.summary().dropped.memory > 0);
    // IPv4 has a separate budget.
    assert.equal(d.offer(decode(frag4(0, 800, true)), 0), STOLEN);
    assert.equal(d.summary().dropped.memory, 20 - d.summary().held + 1);
  });
});
