/**
 * Conntrack helpers and expectations (nf_conntrack_ftp, nf_conntrack_tftp,
 * nf_conntrack_expect) through the packet path: assignment by rule, the
 * commands parsed per packet with the command-stream sequence tracking,
 * RELATED on match, policy limits, timeouts, listing, NAT following the master.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CT_STATE, IPS } from "../../src/conntrack/constants.js";
import { VERDICT } from "../../src/firewall/eval.js";
import { trackerEngine } from "../../src/conntrack/tracker.js";
import { ipt, rig } from "../firewall/path-helpers.js";
import type { Fw } from "../firewall/path-helpers.js";

const C = "198.51.100.7";
const S = "203.0.113.10";
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

const FTP_RULES = ipt({
  raw: ["-A PREROUTING -p tcp -m tcp --dport 21 -j CT --helper ftp"],
  filter: [
    "-A FORWARD -m conntrack --ctstate RELATED -j ACCEPT",
    "-A FORWARD -m conntrack --ctstate ESTABLISHED -j ACCEPT",
    "-A FORWARD -p tcp --dport 21 -j ACCEPT",
    "-A FORWARD -j DROP",
  ],
});

/** A TCP control connection c:cp → s:21 with sequence numbers kept for both sides. */
class Control {
  private cs = 1000;
  private ss = 5000;
  constructor(
    readonly fw: Fw,
    readonly cp = 40000,
    readonly c = C,
    readonly s = S,
  ) {}
  open(): void {
    this.fw.tcp({ src: this.c, dst: this.s, sport: this.cp, dport: 21, flags: "S", seq: this.cs++ });
    this.fw.tcp({ src: this.s, dst: this.c, sport: 21, dport: this.cp, flags: "SA", seq: this.ss++, ack: this.cs });
    this.fw.tcp({ src: this.c, dst: this.s, sport: this.cp, dport: 21, flags: "A", seq: this.cs, ack: this.ss });
  }
  client(text: string) {
    const r = this.fw.tcp({ src: this.c, dst: this.s, sport: this.cp, dport: 21, flags: "PA", seq: this.cs, ack: this.ss, payload: enc(text) });
    this.cs += text.length;
    return r;
  }
  server(text: string) {
    const r = this.fw.tcp({ src: this.s, dst: this.c, sport: 21, dport: this.cp, flags: "PA", seq: this.ss, ack: this.cs, payload: enc(text) });
    this.ss += text.length;
    return r;
  }
}

describe("FTP helper", () => {
  it("PORT (active): the server's data connection is RELATED, the expectation is used up", () => {
    const fw = rig(FTP_RULES);
    const ctl = new Control(fw);
    ctl.open();
    ctl.server("220 ready\r\n");
    ctl.client("USER anonymous\r\n");
    ctl.server("331 go on\r\n");
    ctl.client("PORT 198,51,100,7,156,64\r\n");
    assert.equal(trackerEngine(fw.tr).expectations.count, 1);
    assert.deepEqual(fw.tr.formatExpectations(), [
      `300 proto=6 src=${S} dst=${C} sport=0 dport=40000 mask-src=255.255.255.255 mask-dst=255.255.255.255 sport=0 dport=65535 master-src=${C} master-dst=${S} sport=40000 dport=21 class=0 helper=ftp`,
    ]);
    const d = fw.tcp({ src: S, dst: C, sport: 20, dport: 40000, flags: "S", seq: 77 });
    assert.equal(d.state, CT_STATE.RELATED);
    assert.equal(d.verdict, VERDICT.ACCEPT);
    assert.equal(trackerEngine(fw.tr).expectations.count, 0);
    assert.ok(trackerEngine(fw.tr).statusOf(d.slot) & IPS.EXPECTED);
    assert.ok(trackerEngine(fw.tr).masterOf(d.slot) >= 0);
    assert.equal(fw.tr.stats.expect_new, 1);
    const lines = fw.table();
    assert.ok(
      lines.some((l) => l.includes("dport=21 ") && l.includes("helper=ftp")),
      lines.join("\n"),
    );
    assert.ok(
      lines.some((l) => l.includes("sport=20 dport=40000") && !l.includes("helper=")),
      lines.join("\n"),
    );
  });

  it("227 and 229 (passive): the client's data connection is RELATED", () => {
    const fw = rig(FTP_RULES);
    const ctl = new Control(fw);
    ctl.open();
    ctl.server("220 ready\r\n");
    ctl.client("USER a\r\n");
    ctl.server("227 Entering Passive Mode (203,0,113,10,195,80).\r\n");
    assert.equal(fw.tcp({ src: C, dst: S, sport: 40100, dport: 50000, flags: "S", seq: 1 }).state, CT_STATE.RELATED);
    ctl.server("229 Entering Extended Passive Mode (|||50001|)\r\n");
    assert.equal(fw.tcp({ src: C, dst: S, sport: 40101, dport: 50001, flags: "S", seq: 1 }).state, CT_STATE.RELATED);
    // Another port is not expected.
    assert.equal(fw.tcp({ src: C, dst: S, sport: 40102, dport: 50002, flags: "S", seq: 1 }).verdict, VERDICT.DROP);
  });

  it("never reads the first line of a direction, nor a packet that does not follow a line end", () => {
    const fw = rig(FTP_RULES);
    const ctl = new Control(fw);
    ctl.open();
    ctl.client("PORT 198,51,100,7,156,64\r\n");
    assert.equal(trackerEngine(fw.tr).expectations.count, 0, "first client line");
    ctl.client("NOOP"); // no line end: the next packet does not start a line
    ctl.client(" x\r\nPORT 198,51,100,7,156,65\r\n");
    assert.equal(trackerEngine(fw.tr).expectations.count, 0, "a command inside a packet is never found");
    ctl.client("PORT 198,51,100,7,156,66\r\n");
    assert.equal(trackerEngine(fw.tr).expectations.count, 1);
  });

  it("drops a partial match and registers nothing for another host's address (loose=0)", () => {
    const fw = rig(FTP_RULES);
    const ctl = new Control(fw);
    ctl.open();
    ctl.client("USER a\r\n");
    assert.equal(ctl.client("PORT 198,51,100,7\r\n").verdict, VERDICT.DROP);
    // The dropped packet left the line-end record unchanged: a resent command at the same sequence is read.
    ctl.client("PORT 10,0,0,1,156,64\r\n");
    assert.equal(trackerEngine(fw.tr).expectations.count, 0);
    ctl.client("PORT 198,51,100,7,4,0\r\n");
    assert.equal(trackerEngine(fw.tr).expectations.count, 1);
  });

  it("keeps one expectation per connection (max_expected 1) and times it out after 300 s", () => {
    const ev: string[] = [];
    const fw = rig(FTP_RULES, { expectEvents: (k, l) => ev.push(`[${k}] ${l}`) });
    const tr = fw.tr;
    const ctl = new Control(fw);
    ctl.open();
    ctl.client("USER a\r\n");
    ctl.client("PORT 198,51,100,7,4,1\r\n");
    ctl.client("PORT 198,51,100,7,4,2\r\n");
    assert.equal(trackerEngine(tr).expectations.count, 1);
    assert.match(tr.formatExpectations()[0]!, /dport=1026 /);
    assert.equal(tr.stats.expect_create, 2);
    assert.equal(tr.stats.expect_delete, 1);
    fw.now += 301_000;
    assert.equal(fw.tcp({ src: S, dst: C, sport: 20, dport: 1026, flags: "S", seq: 9 }).verdict, VERDICT.DROP, "expired");
    assert.equal(trackerEngine(tr).expectations.count, 0);
    assert.deepEqual(
      ev.map((l) => l.replace(/ mask-src.*/, "")),
      [
        `[NEW] 300 proto=6 src=${S} dst=${C} sport=0 dport=1025`,
        `[DESTROY] 299 proto=6 src=${S} dst=${C} sport=0 dport=1025`,
        `[NEW] 300 proto=6 src=${S} dst=${C} sport=0 dport=1026`,
        `[DESTROY] 0 proto=6 src=${S} dst=${C} sport=0 dport=1026`,
      ],
    );
    assert.match(tr.formatProcStat()[1]!, / 00000000 00000002 00000002 /, "expect_new expect_create expect_delete");
  });

  it("does nothing without a helper assigned (helpers only by explicit assignment)", () => {
    const fw = rig(ipt({ filter: ["-A FORWARD -m conntrack --ctstate NEW,ESTABLISHED -j ACCEPT"] }));
    const ctl = new Control(fw);
    ctl.open();
    ctl.client("USER a\r\n");
    ctl.client("PORT 198,51,100,7,4,1\r\n");
    assert.equal(trackerEngine(fw.tr).expectations.count, 0);
    assert.equal(fw.tcp({ src: S, dst: C, sport: 20, dport: 1025, flags: "S", seq: 9 }).state, CT_STATE.NEW);
  });

  it("is assigned by an nft ct helper object, after conntrack, to new entries only", () => {
    const doc = {
      nftables: [
        { table: { family: "inet", name: "f", handle: 1 } },
        { "ct helper": { family: "inet", table: "f", name: "ftp-std", type: "ftp", protocol: "tcp", l3proto: "inet" } },
        { chain: { family: "inet", table: "f", name: "pre", handle: 2, type: "filter", hook: "prerouting", prio: 0, policy: "accept" } },
        { chain: { family: "inet", table: "f", name: "fwd", handle: 3, type: "filter", hook: "forward", prio: 0, policy: "accept" } },
        {
          rule: {
            family: "inet",
            table: "f",
            chain: "pre",
            handle: 4,
            expr: [{ match: { op: "==", left: { payload: { protocol: "tcp", field: "dport" } }, right: 21 } }, { "ct helper": "ftp-std" }],
          },
        },
        {
          rule: {
            family: "inet",
            table: "f",
            chain: "fwd",
            handle: 5,
            expr: [{ match: { op: "in", left: { ct: { key: "state" } }, right: "related" } }, { counter: { packets: 0, bytes: 0 } }],
          },
        },
      ],
    };
    const fw = rig(JSON.stringify(doc));
    const ctl = new Control(fw);
    ctl.open();
    ctl.client("USER a\r\n");
    ctl.client("EPRT |1|198.51.100.7|6275|\r\n");
    assert.equal(trackerEngine(fw.tr).expectations.count, 1);
    assert.equal(fw.tcp({ src: S, dst: C, sport: 20, dport: 6275, flags: "S", seq: 9 }).state, CT_STATE.RELATED);
    assert.equal(fw.rule("fwd", 0, "f").counters.packets, 1);
  });

  it("forgets a master's expectations when the master goes", () => {
    const fw = rig(FTP_RULES);
    const ctl = new Control(fw);
    ctl.open();
    ctl.client("USER a\r\n");
    ctl.client("PORT 198,51,100,7,4,1\r\n");
    fw.tcp({ src: C, dst: S, sport: 40000, dport: 21, flags: "R", seq: 2000 });
    fw.now += 11_000;
    fw.tcp({ src: C, dst: S, sport: 40009, dport: 80, flags: "S", seq: 1 });
    assert.equal(trackerEngine(fw.tr).expectations.count, 0);
  });
});

describe("TFTP helper", () => {
  const TFTP = ipt({ raw: ["-A PREROUTING -p udp -m udp --dport 69 -j CT --helper tftp"] });
  it("RRQ: the server's answer from a new port is RELATED", () => {
    const fw = rig(TFTP);
    fw.udp({ src: C, dst: S, sport: 3000, dport: 69, payload: Uint8Array.of(0, 1, ...enc("file\0octet\0")) });
    assert.equal(trackerEngine(fw.tr).expectations.count, 1);
    assert.match(fw.tr.formatExpectations()[0]!, new RegExp(`^300 proto=17 src=${S} dst=${C} sport=0 dport=3000 .* helper=tftp$`));
    const r = fw.udp({ src: S, dst: C, sport: 40001, dport: 3000, payload: Uint8Array.of(0, 3, 0, 1, 1, 2, 3) });
    assert.equal(r.state, CT_STATE.RELATED);
    assert.equal(fw.udp({ src: C, dst: S, sport: 3000, dport: 40001, payload: Uint8Array.of(0, 4, 0, 1) }).state, CT_STATE.ESTABLISHED);
  });

  it("follows a masqueraded master: the answer to the public address is translated to the client", () => {
    const fw = rig(ipt({ raw: ["-A PREROUTING -p udp -m udp --dport 69 -j CT --helper tftp"], nat: ["-A POSTROUTING -o eth0 -j MASQUERADE"] }), {
      host: { addrs: [], defaultIface: "eth0" },
      local: ["eth0=192.0.2.1/24", "eth1=10.0.0.1/24"],
    });
    fw.udp({ src: "10.0.0.5", dst: S, sport: 3000, dport: 69, payload: Uint8Array.of(0, 1, ...enc("f\0octet\0")) });
    assert.match(fw.tr.formatExpectations()[0]!, new RegExp(`src=${S} dst=192.0.2.1 sport=0 dport=3000 `));
    const r = fw.udp({ src: S, dst: "192.0.2.1", sport: 40001, dport: 3000, payload: Uint8Array.of(0, 3, 0, 1) });
    assert.equal(r.state, CT_STATE.RELATED);
    assert.equal(r.route, 1, "DNAT'ed to the client: forwarded");
    assert.ok(
      fw.table().some((l) => l.includes(`src=${S} dst=192.0.2.1 sport=40001 dport=3000`) && l.includes("src=10.0.0.5 dst=" + S + " sport=3000 dport=40001")),
      fw.table().join("\n"),
    );
  });
});
