import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { PacketView } from "../../../src/packet/view.js";
import { CT_DROPPED, Tracker, trackerEngine } from "../../../src/conntrack/tracker.js";
import { CT_STATE } from "../../../src/conntrack/constants.js";
import type { TrackerOptions } from "../../../src/conntrack/tracker.js";
import { PolicyError } from "../../../src/conntrack/policy/policy.js";
import type { PolicyEvent } from "../../../src/conntrack/policy/policy.js";
import { checkPolicyOptions, policyFromCli } from "../../../src/conntrack/policy/registry.js";
import type { PolicyConfig } from "../../../src/conntrack/policy/registry.js";
import { AdaptivePolicy } from "../../../src/conntrack/policy/adaptive.js";
import { ip4, ManualClock, tcp, udpFast } from "../helpers.js";

const A = ip4("10.0.0.1");
const B = ip4("10.0.0.2");
const v = new PacketView();

function make(policy: PolicyConfig, max: number, extra: Partial<TrackerOptions> = {}) {
  const clock = new ManualClock();
  const events: PolicyEvent[] = [];
  const tr = new Tracker({
    sysctls: { nf_conntrack_max: max, nf_conntrack_buckets: 1024 },
    clock,
    seed: 7,
    policy,
    onPolicyEvent: (e) => events.push(e),
    countLiveEvictions: true,
    ...extra,
  });
  return { tr, clock, events };
}

/** UDP A:port → B:53 made ASSURED (reply, then a packet 2 s later). */
function assured(tr: Tracker, clock: ManualClock, ports: number[]): void {
  for (const p of ports) tr.process(udpFast(v, A, B, p, 53));
  for (const p of ports) tr.process(udpFast(v, B, A, 53, p));
  clock.tick(2100);
  for (const p of ports) tr.process(udpFast(v, A, B, p, 53));
}

function ports(from: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => from + i);
}

function live(tr: Tracker): Set<number> {
  const e = trackerEngine(tr);
  return new Set(e.slots().map((s) => e.table.sport[s] as number));
}

describe("policy options (library and --policy-opt)", () => {
  it("fills defaults and takes typed options", () => {
    assert.deepEqual(new Tracker({ policy: "adaptive" }).policy.options, { start: 0.6, end: 1.2 });
    assert.deepEqual(new Tracker({ policy: { name: "adaptive", start: 0.5 } }).policy.options, { start: 0.5, end: 1.2 });
    assert.equal(new Tracker({ policy: { name: "quota", per: "zone", max: 3 } }).policy.options.per, "zone");
  });

  it("parses --policy-opt lists, keeps only the named policy's options, and names the option at fault", () => {
    assert.deepEqual(policyFromCli("adaptive", ["adaptive.start=0.5,adaptive.end=0.9", "ctlab.share=0.2"]), { name: "adaptive", start: 0.5, end: 0.9 });
    assert.deepEqual(policyFromCli("ctlab", ["ctlab.grace-new=2"]), {
      name: "ctlab",
      graceNew: 2,
      graceEstablished: 10,
      graceClosing: 1,
      scan: 4,
      samples: 8,
      share: 0.1,
      prefix4: 24,
      prefix6: 64,
    });
    const bad: Array<[string[], RegExp]> = [
      [["adaptive.start=abc"], /^Invalid policy option adaptive\.start="abc": expected a number$/],
      [["adaptive.start=0"], /adaptive\.start="0": expected a value from 0\.01 to 10/],
      [["adaptive.begin=1"], /^Unknown policy option "adaptive\.begin": known are adaptive\.start, adaptive\.end$/],
      [["start=1"], /^Invalid --policy-opt "start=1": expected POLICY\.OPTION=VALUE/],
      [["lru.size=1"], /unknown table policy "lru"/],
      [["quota.per=subnet"], /quota\.per="subnet": expected one of address, prefix, zone/],
      [["emergency.checks=2.5"], /expected a whole number/],
      [["adaptive.start=0.9,adaptive.end=0.8"], /adaptive\.end \(0\.8\) must be above adaptive\.start \(0\.9\)/],
    ];
    for (const [opts, re] of bad)
      assert.throws(
        () => checkPolicyOptions(opts),
        (e: unknown) => e instanceof PolicyError && re.test(e.message),
        opts.join(),
      );
    assert.throws(() => policyFromCli("lru", []), /Unknown table policy "lru": known are kernel, adaptive, emergency, recycle-half-open, quota, ctlab/);
  });
});

describe("adaptive (pf adaptive.start / adaptive.end)", () => {
  it("scales every timeout linearly between the marks", () => {
    const p = new AdaptivePolicy({ start: 0.6, end: 1.2 }, 100);
    assert.equal(p.scaleAt(59), 1);
    assert.equal(p.scaleAt(60), 1);
    assert.ok(Math.abs(p.scaleAt(90) - 0.5) < 1e-12);
    assert.ok(Math.abs(p.scaleAt(100) - 1 / 3) < 1e-12);
  });

  it("above the start mark, expires entries idle longer than their scaled timeout, and announces the level", () => {
    const { tr, clock, events } = make({ name: "adaptive", start: 0.5, end: 1 }, 10);
    // Five unanswered flows (30 s timeout), idle 20 s; then fresh ones up to 9 entries (90 %: scale 0.2, 6 s).
    for (const p of ports(1, 5)) tr.process(udpFast(v, A, B, p, 53));
    clock.tick(20_000);
    for (const p of ports(100, 4)) tr.process(udpFast(v, A, B, p, 53));
    assert.equal(events.length, 1);
    assert.equal(events[0]?.levelName, "scaling");
    assert.equal(events.at(0)?.previous, "normal");
    // The old ones went as soon as the occupancy made their idle time exceed the scaled timeout.
    assert.deepEqual(
      [...live(tr)].sort((a, b) => a - b),
      [100, 101, 102, 103],
    );
    assert.equal(tr.policy.evictions["scaled-timeout"], 5);
    assert.equal(tr.stats.early_drop, 0);
    // Below the start mark a tick ends the level.
    clock.tick(31_000);
    tr.advance(clock.now());
    assert.equal(events.at(-1)?.levelName, "normal");
  });

  it("spares entries idle less than their scaled timeout", () => {
    const { tr, clock } = make({ name: "adaptive", start: 0.5, end: 1 }, 10);
    for (const p of ports(1, 5)) tr.process(udpFast(v, A, B, p, 53));
    clock.tick(2_000);
    for (const p of ports(100, 3)) tr.process(udpFast(v, A, B, p, 53));
    assert.equal(tr.count, 8);
    assert.equal(tr.policy.evictions["scaled-timeout"], 0);
  });
});

describe("emergency (Suricata emergency mode)", () => {
  const SYN = (sport: number) => tcp({ src: "10.0.0.1", dst: "10.0.0.2", sport, dport: 80, flags: "S", seq: 1000 });
  const ACK = (sport: number) => tcp({ src: "10.0.0.1", dst: "10.0.0.2", sport, dport: 80, flags: "A", seq: 1001, ack: 5 });

  it("enters at the mark, refuses TCP state from anything but a SYN, reaps by emergency timeouts, and leaves after N healthy checks", () => {
    const { tr, clock, events } = make({ name: "emergency", enter: 0.8, recovery: 0.5, checks: 3, otherNew: 4 }, 10);
    for (const p of ports(1, 8)) tr.process(udpFast(v, A, B, p, 53));
    assert.equal(events.length, 0);
    // The 9th entry: occupancy 80 % → emergency.
    assert.notEqual(tr.process(SYN(4000)), CT_DROPPED);
    assert.equal(events[0]?.levelName, "emergency");
    // A mid-stream pickup is refused while in emergency; a SYN is not.
    assert.equal(tr.process(ACK(4001)), CT_DROPPED);
    assert.equal(tr.policy.refusals["not-syn"], 1);
    assert.equal(tr.process(SYN(4002)), CT_STATE.NEW);
    // Unanswered UDP idle beyond emergency.other-new (4 s) and the SYN_SENT entries beyond tcp-new (5 s) go at the ticks.
    clock.tick(5_000);
    tr.advance(clock.now());
    assert.equal(tr.policy.evictions["emergency-timeout"], 10);
    assert.equal(tr.count, 0);
    // Healthy (count below half) for 3 checks: back to normal; then a mid-stream pickup is allowed again.
    clock.tick(3_100);
    tr.advance(clock.now());
    assert.equal(events.at(-1)?.levelName, "normal");
    assert.equal(events.length, 2);
    assert.notEqual(tr.process(ACK(4003)), CT_DROPPED);
  });
});

describe("recycle-half-open (VPP)", () => {
  it("recycles the longest-idle non-ASSURED entry anywhere in the table, never an ASSURED one", () => {
    const { tr, clock } = make("recycle-half-open", 6);
    assured(tr, clock, ports(1, 4));
    tr.process(udpFast(v, A, B, 50, 53));
    clock.tick(1000);
    tr.process(udpFast(v, A, B, 51, 53));
    clock.tick(1000);
    assert.equal(tr.count, 6);
    assert.notEqual(tr.process(udpFast(v, A, B, 60, 53)), CT_DROPPED);
    assert.ok(!live(tr).has(50) && live(tr).has(51), "the older half-open entry went");
    assert.notEqual(tr.process(udpFast(v, A, B, 61, 53)), CT_DROPPED);
    assert.notEqual(tr.process(udpFast(v, A, B, 62, 53)), CT_DROPPED);
    assert.equal(tr.policy.evictions["half-open"], 3);
    // Now only ASSURED ones and the half-open entries just made: 60, 61 went, 62 is the one left... fill with assured.
    for (const p of ports(1, 4)) assert.ok(live(tr).has(p));
  });

  it("refuses when every entry is ASSURED", () => {
    const { tr, clock } = make("recycle-half-open", 4);
    assured(tr, clock, ports(1, 4));
    assert.equal(tr.process(udpFast(v, A, B, 60, 53)), CT_DROPPED);
    assert.equal(tr.policy.refusals["table-full"], 1);
    assert.equal(tr.stats.drop, 1);
  });
});

describe("quota (per address, prefix or zone)", () => {
  it("refuses a source's entry beyond its quota, counts it, and admits again once an entry is gone", () => {
    const { tr, clock } = make({ name: "quota", max: 2 }, 100);
    assert.notEqual(tr.process(udpFast(v, A, B, 1, 53)), CT_DROPPED);
    assert.notEqual(tr.process(udpFast(v, A, B, 2, 53)), CT_DROPPED);
    assert.equal(tr.process(udpFast(v, A, B, 3, 53)), CT_DROPPED);
    assert.equal(tr.policy.refusals.quota, 1);
    // Another address has its own quota; packets of existing entries are untouched.
    assert.notEqual(tr.process(udpFast(v, ip4("10.0.0.9"), B, 3, 53)), CT_DROPPED);
    assert.equal(tr.process(udpFast(v, A, B, 1, 53)), CT_STATE.NEW);
    clock.tick(31_000);
    tr.advance(clock.now());
    assert.notEqual(tr.process(udpFast(v, A, B, 3, 53)), CT_DROPPED);
  });

  it("groups a /24 with per=prefix, and zones with per=zone", () => {
    const q = make({ name: "quota", per: "prefix", max: 2 }, 100).tr;
    q.process(udpFast(v, ip4("10.0.0.1"), B, 1, 53));
    q.process(udpFast(v, ip4("10.0.0.200"), B, 1, 53));
    assert.equal(q.process(udpFast(v, ip4("10.0.0.77"), B, 1, 53)), CT_DROPPED);
    assert.notEqual(q.process(udpFast(v, ip4("10.0.1.77"), B, 1, 53)), CT_DROPPED);
    const z = make({ name: "quota", per: "zone", max: 2 }, 100).tr;
    z.process(udpFast(v, ip4("10.0.0.1"), B, 1, 53), undefined, 5);
    z.process(udpFast(v, ip4("192.0.2.1"), B, 1, 53), undefined, 5);
    assert.equal(z.process(udpFast(v, ip4("198.51.100.1"), B, 1, 53), undefined, 5), CT_DROPPED);
    assert.notEqual(z.process(udpFast(v, ip4("198.51.100.1"), B, 1, 53), undefined, 6), CT_DROPPED);
  });
});

describe("ctlab (longest idle beyond its grace, per-source fairness)", () => {
  it("evicts an idle ASSURED entry the kernel cannot, never one active within its grace", () => {
    const { tr, clock } = make("ctlab", 4);
    assured(tr, clock, ports(1, 4));
    clock.tick(20_000);
    // Ports 2–4 stay active; port 1 is idle 20 s (grace established 10 s).
    for (const p of ports(2, 3)) tr.process(udpFast(v, A, B, p, 53));
    assert.notEqual(tr.process(udpFast(v, A, B, 60, 53)), CT_DROPPED);
    assert.ok(!live(tr).has(1) && live(tr).has(60));
    assert.equal(tr.policy.evictions.idle, 1);
    // Everything active within its grace now: refused (the kernel's early drop finds nothing either).
    assert.equal(tr.process(udpFast(v, A, B, 61, 53)), CT_DROPPED);
    assert.equal(tr.policy.refusals["all-active"], 1);
    assert.equal(tr.policy.liveEvictions, 0);
    const k = make("kernel", 4);
    assured(k.tr, k.clock, ports(1, 4));
    k.clock.tick(20_000);
    assert.equal(k.tr.process(udpFast(v, A, B, 60, 53)), CT_DROPPED);
  });

  it("prefers a new entry idle beyond its short grace to an established one inside its own", () => {
    const { tr, clock } = make("ctlab", 3);
    assured(tr, clock, ports(1, 2));
    tr.process(udpFast(v, A, B, 50, 53));
    clock.tick(5_000);
    assert.notEqual(tr.process(udpFast(v, A, B, 60, 53)), CT_DROPPED);
    assert.deepEqual(
      [...live(tr)].sort((a, b) => a - b),
      [1, 2, 60],
    );
  });

  it("keeps a source above its share of the table from evicting a smaller source's entry", () => {
    const { tr, clock } = make({ name: "ctlab", share: 0.5 }, 4);
    const X = ip4("192.0.2.1");
    tr.process(udpFast(v, X, B, 9, 53));
    clock.tick(30);
    for (const p of ports(1, 3)) tr.process(udpFast(v, A, B, p, 53));
    clock.tick(5_000);
    // A's /24 holds 3 of 4 (above half): it may not push out X's entry, the longest idle.
    assert.equal(tr.process(udpFast(v, A, B, 10, 53)), CT_DROPPED);
    assert.equal(tr.policy.refusals["source-share"], 1);
    assert.ok(live(tr).has(9));
    // X's /24 is small: its new entry recycles the longest idle, its own.
    assert.notEqual(tr.process(udpFast(v, X, B, 11, 53)), CT_DROPPED);
  });

  it("leaves the full level once the table is below 95 % at a GC run", () => {
    const { tr, clock, events } = make("ctlab", 4);
    for (const p of ports(1, 4)) tr.process(udpFast(v, A, B, p, 53));
    clock.tick(2_000);
    tr.process(udpFast(v, A, B, 60, 53));
    assert.equal(events[0]?.levelName, "full");
    clock.tick(90_000);
    tr.advance(clock.now());
    assert.equal(events.at(-1)?.levelName, "normal");
  });
});
