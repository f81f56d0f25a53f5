/**
 * The Tracker's public surface: results named by ctStateName, entries read
 * through EntryReader views (iteration reuses one reader, `entry()` gives
 * one of its own), events carrying a reader, sysctls typed by name.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { CT_STATE, IPS } from "../../src/conntrack/constants.js";
import { formatEvent } from "../../src/conntrack/events.js";
import type { EntryReader } from "../../src/conntrack/entry.js";
import { CT_DROPPED, ctStateName, Tracker } from "../../src/conntrack/tracker.js";
import { ip4, rig, udp } from "./helpers.js";

const A = "10.0.0.1";
const B = "10.0.0.2";

describe("Tracker API", () => {
  it("names results: ctStateName of a value or of the result record", () => {
    const { tr } = rig();
    assert.equal(ctStateName(tr.process(udp({ src: A, dst: B, sport: 1, dport: 2 }))), "new");
    assert.equal(tr.result.stateName, "new");
    assert.equal(ctStateName(tr.result), "new");
    assert.equal(ctStateName(tr.process(udp({ src: B, dst: A, sport: 2, dport: 1 }))), "established");
    assert.equal(ctStateName(CT_STATE.INVALID), "invalid");
    assert.equal(ctStateName(CT_STATE.RELATED), "related");
    assert.equal(ctStateName(CT_STATE.UNTRACKED), "untracked");
    assert.equal(ctStateName(CT_DROPPED), "dropped");
    assert.equal(ctStateName(0), "none");
  });

  it("reads entries through one reused reader, or a reader of its own from entry()", () => {
    const { tr } = rig({ sysctls: { nf_conntrack_acct: 1 } });
    tr.process(udp({ src: A, dst: B, sport: 1, dport: 2 }));
    tr.process(udp({ src: B, dst: A, sport: 2, dport: 1 }));
    tr.process(udp({ src: A, dst: B, sport: 3, dport: 4 }));
    const seen: EntryReader[] = [];
    const ports: number[] = [];
    for (const e of tr.entries()) {
      seen.push(e);
      ports.push(e.tuple(0).sport);
    }
    assert.equal(seen.length, 2);
    assert.equal(seen[0], seen[1], "one reader for the whole walk");
    assert.deepEqual([...ports].sort(), [1, 3]);
    const cb: number[] = [];
    tr.forEachEntry((e) => cb.push(e.tuple(0).sport));
    assert.deepEqual(cb, ports, "forEachEntry walks in the same order");

    const id = tr.result.slot;
    const e = tr.entry(id);
    assert.ok(e !== null);
    assert.equal(e.id, id);
    assert.equal(e.family, 4);
    assert.equal(e.l3proto, 2);
    assert.equal(e.proto, 17);
    assert.equal(e.stateName, "");
    assert.equal(e.status & (IPS.CONFIRMED | IPS.SEEN_REPLY), IPS.CONFIRMED);
    assert.equal(e.timeoutSeconds, 30);
    assert.equal(e.remainingMs, 30_000);
    assert.equal(e.zone, 0);
    assert.equal(e.mark, 0);
    const o = e.tuple(0);
    assert.deepEqual([o.s0, o.d0, o.sport, o.dport], [ip4(A), ip4(B), 3, 4]);
    const r = e.tuple(1);
    assert.deepEqual([r.s0, r.d0, r.sport, r.dport], [ip4(B), ip4(A), 4, 3]);
    assert.deepEqual(e.counters(0), { packets: 1, bytes: 28 });
    assert.deepEqual(e.counters(1), { packets: 0, bytes: 0 });
    assert.equal(e.timestamps(), null);
    assert.equal(
      tr.formatEntry(id),
      tr.formatTable().find((l) => l.includes("sport=3")),
    );
    tr.setMark(id, 7);
    assert.equal(e.mark, 7);
  });

  it("has no entry for a free, expired or out-of-range id", () => {
    const { tr, clock } = rig();
    tr.process(udp({ src: A, dst: B, sport: 1, dport: 2 }));
    const id = tr.result.slot;
    assert.ok(tr.entry(id) !== null);
    assert.equal(tr.entry(-1), null);
    assert.equal(tr.entry(1.5), null);
    assert.equal(tr.entry(tr.capacity), null);
    assert.equal(tr.entry(id + 1), null);
    assert.throws(() => tr.formatEntry(id + 1), /^RangeError: Cannot format entry \d+: no such entry$/);
    assert.throws(() => tr.setMark(id + 1, 1), /^RangeError: Cannot set the mark of entry \d+: no such entry$/);
    clock.tick(31_000);
    tr.advance(clock.t);
    assert.equal(tr.entry(id), null);
  });

  it("hands event sinks a reader of the event's entry", () => {
    const lines: string[] = [];
    const states: string[] = [];
    const tr = new Tracker({
      seed: 1,
      events: {
        onEvent: (type, bits, e, ms) => {
          states.push(`${type}:${e.proto}:${e.tuple(0).sport}`);
          lines.push(formatEvent(type, bits, e, ms));
        },
      },
    });
    tr.process(udp({ src: A, dst: B, sport: 1, dport: 2 }));
    tr.advance(31_000);
    assert.deepEqual(states, ["1:17:1", "4:17:1"]);
    assert.match(lines[0] ?? "", /^ {4}\[NEW\] udp {6}17 30 src=10\.0\.0\.1 dst=10\.0\.0\.2 sport=1 dport=2 \[UNREPLIED\]/);
  });

  it("types sysctls by name and keeps the tracker's state read-only", () => {
    const tr = new Tracker({ sysctls: { nf_conntrack_max: 16, nf_conntrack_buckets: 16 }, seed: 1 });
    assert.equal(tr.sysctl.nf_conntrack_max, 16);
    assert.equal(tr.sysctl.nf_conntrack_udp_timeout, 30_000);
    // @ts-expect-error a mistyped sysctl name does not compile
    assert.equal(tr.sysctl.nf_conntrack_udp_timout, undefined);
    // @ts-expect-error time only moves through advance() or the clock
    assert.throws(() => (tr.now = 5), TypeError);
    // @ts-expect-error the peak is the tracker's to keep
    assert.throws(() => (tr.peak = 5), TypeError);
    // @ts-expect-error the table is not part of the public surface
    assert.equal(tr.table, undefined);
  });
});
