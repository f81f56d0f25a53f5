/**
 * The table-full behaviour every policy must keep (the conformance suite of
 * the policy seam): the table's structure stays sound, nf_conntrack_max is
 * never exceeded, every refusal is a counted drop with the table-full
 * reason, evictions are DESTROY events, entries active within seconds of a
 * full table of ASSURED flows keep working, and the kernel's own table-full
 * tests (test/conntrack/table-full.test.ts, test/kernel/tablefull.test.ts)
 * hold for `kernel` because it is the default policy.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { PacketView } from "../../../src/packet/view.js";
import { CT_DROPPED, Tracker, trackerEngine } from "../../../src/conntrack/tracker.js";
import { CT_STATE } from "../../../src/conntrack/constants.js";
import { EVENT_TYPE } from "../../../src/conntrack/events.js";
import type { EventType } from "../../../src/conntrack/events.js";
import { INVALID_REASON } from "../../../src/conntrack/stats.js";
import { POLICY_NAMES } from "../../../src/conntrack/policy/policy.js";
import { ip4, ManualClock, tcp, udpFast } from "../helpers.js";

const B = ip4("10.9.0.1");
const v = new PacketView();

class Count {
  created = 0;
  destroyed = 0;
  onEvent(type: EventType): void {
    if (type === EVENT_TYPE.NEW) this.created++;
    else if (type === EVENT_TYPE.DESTROY) this.destroyed++;
  }
}

function make(policy: (typeof POLICY_NAMES)[number], max: number) {
  const clock = new ManualClock();
  const ev = new Count();
  const tr = new Tracker({ sysctls: { nf_conntrack_max: max, nf_conntrack_buckets: 64 }, clock, seed: 3, policy, events: ev, countLiveEvictions: true });
  return { tr, clock, ev };
}

for (const policy of POLICY_NAMES) {
  describe(`table-full conformance: ${policy}`, () => {
    it("keeps the table sound and within nf_conntrack_max under churn; every refusal is a table-full drop, every eviction a DESTROY", () => {
      const { tr, clock, ev } = make(policy, 128);
      const e = trackerEngine(tr);
      let x = 11;
      let full = 0;
      let expired = 0;
      for (let i = 0; i < 6000; i++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        x >>>= 0;
        const src = ip4(`10.${(x >>> 4) & 3}.${(x >>> 8) & 7}.${1 + ((x >>> 12) & 15)}`);
        const port = 1024 + (x % 600);
        let s: number;
        switch ((x >>> 20) % 5) {
          case 0:
            s = tr.process(udpFast(v, B, src, 53, port));
            break;
          case 1:
            s = tr.process(tcp({ src: "10.9.0.1", dst: "10.1.2.3", sport: port, dport: 80, flags: "S", seq: x }));
            break;
          case 2:
            s = tr.process(tcp({ src: "10.1.2.3", dst: "10.9.0.1", sport: 80, dport: port, flags: "A", seq: x, ack: 1 }));
            break;
          default:
            s = tr.process(udpFast(v, src, B, port, 53));
        }
        if (s === CT_DROPPED && tr.result.invalidReason === INVALID_REASON.TABLE_FULL) full++;
        assert.ok(tr.count <= 128);
        const before = ev.destroyed;
        clock.tick(1 + ((x >>> 9) % 30));
        tr.advance(clock.now());
        expired += ev.destroyed - before;
        if (i % 500 === 0) assert.equal(e.table.audit(), null);
      }
      assert.equal(e.table.audit(), null);
      const p = tr.policy;
      const refused = Object.values(p.refusals).reduce((a, b) => a + b, 0);
      const evicted = Object.values(p.evictions).reduce((a, b) => a + b, 0);
      assert.ok(full > 0 || evicted > 0, "the churn puts the table under pressure");
      assert.equal(refused, full);
      assert.equal(tr.stats.drop, full);
      assert.equal(ev.created - ev.destroyed, tr.count);
      // Evictions are DESTROY events (those of the GC and of policy ticks happen during advance(), beside expiries).
      assert.ok(evicted <= ev.destroyed);
      assert.ok(ev.destroyed - expired <= evicted);
      assert.ok(tr.peak <= 128);
    });

    it("keeps flows active within seconds working when the table is full of ASSURED entries", () => {
      const { tr, clock } = make(policy, 8);
      const ports = [1, 2, 3, 4, 5, 6, 7, 8];
      const A = ip4("10.0.0.1");
      for (const p of ports) tr.process(udpFast(v, A, B, p, 53));
      for (const p of ports) tr.process(udpFast(v, B, A, 53, p));
      clock.tick(2100);
      for (const p of ports) tr.process(udpFast(v, A, B, p, 53));
      for (let round = 0; round < 5; round++) {
        clock.tick(1000);
        tr.process(udpFast(v, ip4("192.0.2.9"), B, 40000 + round, 53));
        for (const p of ports) assert.equal(tr.process(udpFast(v, A, B, p, 53)), CT_STATE.ESTABLISHED, `${policy}: port ${p}, round ${round}`);
      }
      assert.equal(tr.policy.liveEvictions, 0);
    });
  });
}
