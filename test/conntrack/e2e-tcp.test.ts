/**
 * TCP through the whole core (TcpTracker behind Tracker): the event lines the
 * kernel printed in kernel-conntrack.md 1.11 and 5.3.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { CT_STATE, CTINFO, IPS } from "../../src/conntrack/constants.js";
import { entryOf, firstEntry, rig, tcp } from "./helpers.js";

const C = "10.0.0.1";
const S = "10.0.0.2";

function conv(cport: number, sport: number) {
  return {
    c: (flags: string, seq: number, ack: number, payload = 0) => tcp({ src: C, dst: S, sport: cport, dport: sport, flags, seq, ack, payload }),
    s: (flags: string, seq: number, ack: number, payload = 0) => tcp({ src: S, dst: C, sport, dport: cport, flags, seq, ack, payload }),
  };
}

const T = "src=10.0.0.1 dst=10.0.0.2 sport=40000 dport=8080";
const R = "src=10.0.0.2 dst=10.0.0.1 sport=8080 dport=40000";

describe("TCP end to end", () => {
  it("prints the kernel's full lifecycle (server closes first), then the expiry DESTROY", () => {
    const { tr, clock, events } = rig();
    const k = conv(40000, 8080);
    assert.equal(tr.process(k.c("S", 1000, 0)), CT_STATE.NEW);
    assert.equal(tr.process(k.s("SA", 5000, 1001)), CT_STATE.ESTABLISHED);
    assert.equal(tr.process(k.c("A", 1001, 5001)), CT_STATE.ESTABLISHED);
    assert.equal(tr.result.ctinfo, CTINFO.ESTABLISHED);
    tr.process(k.s("FA", 5001, 1001));
    tr.process(k.c("A", 1001, 5002));
    tr.process(k.c("FA", 1001, 5002));
    tr.process(k.s("A", 5002, 1002));
    clock.tick(120_000);
    tr.advance(clock.t);
    assert.deepEqual(events.lines, [
      `    [NEW] tcp      6 120 SYN_SENT ${T} [UNREPLIED] ${R}`,
      ` [UPDATE] tcp      6 60 SYN_RECV ${T} ${R}`,
      ` [UPDATE] tcp      6 432000 ESTABLISHED ${T} ${R} [ASSURED]`,
      ` [UPDATE] tcp      6 120 FIN_WAIT ${T} ${R} [ASSURED]`,
      ` [UPDATE] tcp      6 60 CLOSE_WAIT ${T} ${R} [ASSURED]`,
      ` [UPDATE] tcp      6 30 LAST_ACK ${T} ${R} [ASSURED]`,
      ` [UPDATE] tcp      6 120 TIME_WAIT ${T} ${R} [ASSURED]`,
      `[DESTROY] tcp      6 TIME_WAIT ${T} ${R} [ASSURED]`,
    ]);
    assert.equal(tr.count, 0);
  });

  it("shows an established connection in -L, -o extended and /proc as the kernel does", () => {
    const { tr, clock } = rig();
    const k = conv(40000, 8080);
    tr.process(k.c("S", 1000, 0));
    tr.process(k.s("SA", 5000, 1001));
    tr.process(k.c("A", 1001, 5001));
    clock.tick(1000);
    assert.deepEqual(tr.formatTable({ extended: true }), [`ipv4     2 tcp      6 431999 ESTABLISHED ${T} ${R} [ASSURED] mark=0 use=1`]);
    assert.deepEqual(tr.formatProc(), [`ipv4     2 tcp      6 431999 ESTABLISHED ${T} ${R} [ASSURED] mark=0 zone=0 use=2`]);
  });

  it("destroys the entry when a RST answers the SYN (CLOSE, the SYN_SENT timeout left)", () => {
    const { tr, events } = rig();
    const k = { c: conv(60170, 9999).c, s: conv(60170, 9999).s };
    tr.process(k.c("S", 7000, 0));
    assert.equal(tr.process(k.s("RA", 0, 7001)), CT_STATE.ESTABLISHED);
    assert.equal(tr.result.ctinfo, CTINFO.ESTABLISHED_REPLY);
    assert.equal(tr.result.slot, -1);
    assert.equal(tr.count, 0);
    assert.deepEqual(events.lines, [
      "    [NEW] tcp      6 120 SYN_SENT src=10.0.0.1 dst=10.0.0.2 sport=60170 dport=9999 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 sport=9999 dport=60170",
      "[DESTROY] tcp      6 120 CLOSE src=10.0.0.1 dst=10.0.0.2 sport=60170 dport=9999 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 sport=9999 dport=60170",
    ]);
  });

  it("replaces a TIME_WAIT entry when the same 4-tuple opens again (DESTROY then NEW)", () => {
    const { tr, clock, events } = rig();
    const k = conv(40000, 8080);
    tr.process(k.c("S", 1000, 0));
    tr.process(k.s("SA", 5000, 1001));
    tr.process(k.c("A", 1001, 5001));
    tr.process(k.c("FA", 1001, 5001));
    tr.process(k.s("FA", 5001, 1002));
    tr.process(k.c("A", 1002, 5002));
    clock.tick(2000);
    events.lines.length = 0;
    assert.equal(tr.process(k.c("S", 90000, 0)), CT_STATE.NEW);
    assert.equal(tr.result.isNew, true);
    assert.deepEqual(events.lines, [`[DESTROY] tcp      6 118 TIME_WAIT ${T} ${R} [ASSURED]`, `    [NEW] tcp      6 120 SYN_SENT ${T} [UNREPLIED] ${R}`]);
    assert.equal(tr.count, 1);
    assert.equal(tr.stats.invalid, 0);
  });

  it("picks up a connection from a bare ACK (tcp_loose): 300 s unreplied, assured after both ways", () => {
    const { tr, events } = rig();
    const k = conv(40100, 8081);
    assert.equal(tr.process(k.c("A", 1000, 2000, 10)), CT_STATE.NEW);
    tr.process(k.s("A", 2000, 1010, 10));
    tr.process(k.c("A", 1010, 2010));
    const t = "src=10.0.0.1 dst=10.0.0.2 sport=40100 dport=8081";
    const r = "src=10.0.0.2 dst=10.0.0.1 sport=8081 dport=40100";
    assert.deepEqual(events.lines, [
      `    [NEW] tcp      6 300 ESTABLISHED ${t} [UNREPLIED] ${r}`,
      ` [UPDATE] tcp      6 300 ${t} ${r}`,
      ` [UPDATE] tcp      6 432000 ${t} ${r} [ASSURED]`,
    ]);
    const slot = firstEntry(tr).id;
    assert.equal(entryOf(tr, slot).status & IPS.ASSURED, IPS.ASSURED);
    const strict = rig({ sysctls: { nf_conntrack_tcp_loose: 0 } }).tr;
    assert.equal(strict.process(k.c("A", 1000, 2000)), CT_STATE.INVALID);
  });

  it("marks first SYN/ACK, FIN and RST invalid, and flag garbage before any lookup state change", () => {
    const { tr } = rig();
    const k = conv(40200, 80);
    assert.equal(tr.process(k.c("SA", 1, 1)), CT_STATE.INVALID);
    assert.equal(tr.process(k.c("FA", 1, 1)), CT_STATE.INVALID);
    assert.equal(tr.process(k.c("R", 1, 0)), CT_STATE.INVALID);
    assert.equal(tr.process(k.c("SF", 1, 0)), CT_STATE.INVALID);
    assert.equal(tr.stats.invalid, 4);
    assert.equal(tr.count, 0);
    assert.equal(tr.process(k.c("S", 1, 0, 0)), CT_STATE.NEW);
  });

  it("counts packets and bytes per direction with nf_conntrack_acct and reports them on DESTROY", () => {
    const { tr, clock, events } = rig({ sysctls: { nf_conntrack_acct: 1, nf_conntrack_timestamp: 1 } });
    const k = conv(40300, 8083);
    tr.process(k.c("S", 1, 0));
    tr.process(k.s("SA", 100, 2));
    tr.process(k.c("A", 2, 101));
    tr.process(k.c("PA", 2, 101, 60));
    clock.tick(1500);
    const slot = firstEntry(tr).id;
    assert.deepEqual(entryOf(tr, slot).counters(0), { packets: 3, bytes: 40 + 40 + 100 });
    assert.deepEqual(entryOf(tr, slot).counters(1), { packets: 1, bytes: 40 });
    assert.match(
      tr.formatTable()[0] ?? "",
      / sport=40300 dport=8083 packets=3 bytes=180 src=10\.0\.0\.2 dst=10\.0\.0\.1 sport=8083 dport=40300 packets=1 bytes=40 \[ASSURED\] mark=0 delta-time=\d+ use=1$/,
    );
    // After a reply, a RST only closes: 10 s, then the expiry DESTROY carries counters and delta-time.
    tr.process(k.s("RA", 101, 62));
    assert.equal(
      events.lines[events.lines.length - 1],
      " [UPDATE] tcp      6 10 CLOSE src=10.0.0.1 dst=10.0.0.2 sport=40300 dport=8083 src=10.0.0.2 dst=10.0.0.1 sport=8083 dport=40300 [ASSURED]",
    );
    clock.tick(10_000);
    tr.advance(clock.t);
    assert.equal(
      events.lines[events.lines.length - 1],
      "[DESTROY] tcp      6 CLOSE src=10.0.0.1 dst=10.0.0.2 sport=40300 dport=8083 packets=3 bytes=180 src=10.0.0.2 dst=10.0.0.1 sport=8083 dport=40300 packets=2 bytes=80 [ASSURED] delta-time=11",
    );
  });
});
