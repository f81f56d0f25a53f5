/**
 * The netfilter packet path: stage order on each hook, routing, conntrack
 * on demand, NOTRACK, drops before confirmation, counters and verdicts.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CT_STATE, IPS } from "../../src/conntrack/constants.js";
import { VERDICT } from "../../src/firewall/eval.js";
import { DROP_REASON, ROUTE, trackingFamilies } from "../../src/firewall/path.js";
import { ipt, rig } from "./path-helpers.js";
import { entryOf } from "../conntrack/helpers.js";

const LOCAL = "192.0.2.1";
const REMOTE = "198.51.100.7";

/** A minimal nft JSON document: one table per entry of `chains`, rules as expression lists. */
function nft(
  family: string,
  table: string,
  chains: Array<{ name: string; hook?: string; prio?: number; type?: string; policy?: string; rules: unknown[][] }>,
): string {
  const items: unknown[] = [{ table: { family, name: table, handle: 1 } }];
  let h = 1;
  for (const c of chains) {
    items.push({
      chain: {
        family,
        table,
        name: c.name,
        handle: h++,
        ...(c.hook ? { type: c.type ?? "filter", hook: c.hook, prio: c.prio ?? 0, policy: c.policy ?? "accept" } : {}),
      },
    });
  }
  for (const c of chains) for (const expr of c.rules) items.push({ rule: { family, table, chain: c.name, handle: h++, expr } });
  return JSON.stringify({ nftables: items });
}

const udpDport = (port: number) => ({ match: { op: "==", left: { payload: { protocol: "udp", field: "dport" } }, right: port } });
const ctState = (s: string) => ({ match: { op: "in", left: { ct: { key: "state" } }, right: s } });
const counter = { counter: { packets: 0, bytes: 0 } };

describe("hook stages", () => {
  it("run in the kernel's priority order: raw, conntrack, mangle, NAT, filter, confirm", () => {
    const fw = rig(
      ipt({
        raw: ["-A PREROUTING -j ACCEPT", "-A OUTPUT -j ACCEPT"],
        mangle: ["-A PREROUTING -j ACCEPT"],
        nat: ["-A POSTROUTING -j MASQUERADE"],
        filter: ["-A INPUT -m conntrack --ctstate NEW -j ACCEPT"],
      }),
    );
    const show = (hook: "prerouting" | "input" | "forward" | "output" | "postrouting") =>
      fw.path.stagesOf(4, hook).map((s) => `${s.kind === "chain" ? s.chain!.table : s.kind}@${s.priority === 0x7fffffff ? "last" : s.priority}`);
    assert.deepEqual(show("prerouting"), ["raw@-300", "conntrack@-200", "mangle@-150", "nat@-100"]);
    assert.deepEqual(show("input"), ["mangle@-150", "filter@0", "nat@100", "confirm@last"]);
    assert.deepEqual(show("forward"), ["mangle@-150", "filter@0"]);
    assert.deepEqual(show("output"), ["raw@-300", "conntrack@-200", "mangle@-150", "nat@-100", "filter@0"]);
    assert.deepEqual(show("postrouting"), ["mangle@-150", "nat@100", "confirm@last"]);
    // The NAT stage runs the nat chains of its hook.
    assert.deepEqual(
      fw.path.stagesOf(4, "postrouting")[1]!.natChains.map((c) => c.name),
      ["POSTROUTING"],
    );
  });

  it("interleave nft base chains at their declared priorities (a chain at -200 runs before conntrack)", () => {
    const text = nft("ip", "t", [
      { name: "a", hook: "prerouting", prio: -250, rules: [] },
      { name: "b", hook: "prerouting", prio: -200, rules: [] },
      { name: "c", hook: "prerouting", prio: -175, rules: [[ctState("new"), { accept: null }]] },
      { name: "d", hook: "prerouting", prio: 10, rules: [] },
    ]);
    const fw = rig(text);
    assert.deepEqual(
      fw.path.stagesOf(4, "prerouting").map((s) => (s.kind === "chain" ? s.chain!.name : s.kind)),
      ["a", "b", "conntrack", "c", "d"],
    );
    // An ip table registers nothing for IPv6.
    assert.deepEqual(fw.path.stagesOf(6, "prerouting"), []);
  });
});

describe("conntrack on demand", () => {
  it("a ruleset with no stateful match, NAT or NOTRACK tracks nothing, as the kernel", () => {
    const text = ipt(
      { filter: ["-A FORWARD -p tcp -m tcp --dport 80 -j ACCEPT", "-A FORWARD -p tcp -m tcp --sport 80 -j ACCEPT"] },
      { "filter:FORWARD": "DROP" },
    );
    const fw = rig(text);
    assert.deepEqual(trackingFamilies(fw.rs), { ipv4: false, ipv6: false });
    const r = fw.tcp({ src: REMOTE, dst: "203.0.113.10", sport: 40000, dport: 80, flags: "S", seq: 1 });
    assert.equal(r.verdict, VERDICT.ACCEPT);
    assert.equal(r.state, 0);
    assert.equal(fw.tr.count, 0);
    assert.equal(fw.path.stats.notTracked, 1);
    assert.equal(fw.path.stats.tracked, 0);
    assert.equal(fw.rule("FORWARD", 0).counters.packets, 1);
  });

  it("--enable-hooks tracks the same traffic (nf_conntrack.enable_hooks=1)", () => {
    const fw = rig(ipt({ filter: ["-A FORWARD -p tcp -m tcp --dport 80 -j ACCEPT"] }), { enableHooks: true });
    fw.tcp({ src: REMOTE, dst: "203.0.113.10", sport: 40000, dport: 80, flags: "S", seq: 1 });
    assert.equal(fw.tr.count, 1);
  });

  it("an ip6 table's stateful rule registers conntrack for IPv6 only", () => {
    const fw = rig(nft("ip6", "t", [{ name: "in", hook: "input", rules: [[ctState("new"), counter]] }]));
    assert.deepEqual(fw.path.conntrackOn, { ipv4: false, ipv6: true });
    fw.tcp({ src: REMOTE, dst: "203.0.113.10", sport: 40000, dport: 80, flags: "S", seq: 1 });
    assert.equal(fw.tr.count, 0);
    fw.tcp({ src: "2001:db8::7", dst: "2001:db8:1::10", sport: 40000, dport: 80, flags: "S", seq: 1 });
    assert.equal(fw.tr.count, 1);
  });
});

describe("NOTRACK and untracked packets", () => {
  const text = ipt(
    {
      raw: ["-A PREROUTING -p udp -m udp --dport 53 -j CT --notrack"],
      filter: ["-A INPUT -m conntrack --ctstate UNTRACKED -j ACCEPT", "-A INPUT -m conntrack --ctstate NEW -p udp -m udp --dport 123 -j ACCEPT"],
    },
    { "filter:INPUT": "DROP" },
  );

  it("raw runs before conntrack: the packet is untracked, leaves no entry, and matches --ctstate UNTRACKED", () => {
    const fw = rig(text, { local: [LOCAL] });
    const r = fw.udp({ src: REMOTE, dst: LOCAL, sport: 5353, dport: 53, payload: 20 });
    assert.equal(r.verdict, VERDICT.ACCEPT);
    assert.equal(r.state, CT_STATE.UNTRACKED);
    assert.equal(r.route, ROUTE.INPUT);
    assert.equal(fw.tr.count, 0);
    assert.equal(fw.rule("PREROUTING", 0, "raw").counters.packets, 1);
    assert.equal(fw.rule("INPUT", 0).counters.packets, 1);
    assert.equal(fw.path.stats.untracked, 1);
    assert.equal(fw.events.lines.length, 0);
  });

  it("a tracked packet of the same ruleset gets an entry", () => {
    const fw = rig(text, { local: [LOCAL] });
    const r = fw.udp({ src: REMOTE, dst: LOCAL, sport: 5353, dport: 123, payload: 48 });
    assert.equal(r.state, CT_STATE.NEW);
    assert.equal(r.verdict, VERDICT.ACCEPT);
    assert.equal(fw.tr.count, 1);
  });

  it("nft notrack after conntrack leaves a tracked packet tracked", () => {
    const text2 = nft("ip", "t", [
      {
        name: "late",
        hook: "prerouting",
        prio: 0,
        rules: [
          [udpDport(53), { notrack: null }],
          [ctState("untracked"), counter],
          [ctState("new"), counter],
        ],
      },
    ]);
    const fw = rig(text2);
    const r = fw.udp({ src: REMOTE, dst: "203.0.113.10", sport: 5353, dport: 53, payload: 20 });
    assert.equal(r.state, CT_STATE.NEW);
    assert.equal(fw.rule("late", 1, "t").counters.packets, 0);
    assert.equal(fw.rule("late", 2, "t").counters.packets, 1);
    assert.equal(fw.tr.count, 1);
  });

  it("nft notrack in a raw-priority chain untracks", () => {
    const text2 = nft("ip", "t", [
      { name: "raw", hook: "prerouting", prio: -300, rules: [[udpDport(53), { notrack: null }]] },
      { name: "f", hook: "prerouting", prio: 0, rules: [[ctState("untracked"), counter]] },
    ]);
    const fw = rig(text2);
    const r = fw.udp({ src: REMOTE, dst: "203.0.113.10", sport: 5353, dport: 53, payload: 20 });
    assert.equal(r.state, CT_STATE.UNTRACKED);
    assert.equal(fw.rule("f", 0, "t").counters.packets, 1);
    assert.equal(fw.tr.count, 0);
  });
});

describe("drops and confirmation", () => {
  const text = ipt(
    { filter: ["-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT"] },
    { "filter:INPUT": "DROP" },
  );

  it("a packet dropped before confirmation leaves no entry and no event", () => {
    const fw = rig(text, { local: [LOCAL] });
    const r = fw.tcp({ src: REMOTE, dst: LOCAL, sport: 40000, dport: 25, flags: "S", seq: 1 });
    assert.equal(r.verdict, VERDICT.DROP);
    assert.equal(r.state, CT_STATE.NEW);
    assert.equal(r.dropReason, DROP_REASON.POLICY);
    assert.equal(r.rule, null);
    assert.equal(r.chain?.name, "INPUT");
    assert.equal(fw.tr.count, 0);
    assert.deepEqual(fw.events.lines, []);
    assert.equal(fw.path.chainDrops.get(fw.chain("INPUT")), 1);
    assert.equal(fw.chain("INPUT").policyCounters.packets, 1);
  });

  it("an accepted first packet is confirmed at INPUT: one entry, one NEW event", () => {
    const fw = rig(text, { local: [LOCAL] });
    const r = fw.tcp({ src: REMOTE, dst: LOCAL, sport: 40000, dport: 22, flags: "S", seq: 1 });
    assert.equal(r.verdict, VERDICT.ACCEPT);
    assert.equal(r.rule, fw.rule("INPUT", 1));
    assert.equal(fw.tr.count, 1);
    assert.equal(fw.events.lines.length, 1);
    assert.match(fw.events.lines[0]!, /^ *\[NEW\] ipv4 +2 tcp +6 120 SYN_SENT src=198\.51\.100\.7 dst=192\.0\.2\.1 sport=40000 dport=22 \[UNREPLIED\]/);
    // The reply leaves through OUTPUT and is confirmed as an update of the same entry.
    const back = fw.tcp({ src: LOCAL, dst: REMOTE, sport: 22, dport: 40000, flags: "SA", seq: 9, ack: 2 });
    assert.equal(back.route, ROUTE.OUTPUT);
    assert.equal(back.state, CT_STATE.ESTABLISHED);
    assert.equal(fw.tr.count, 1);
    const again = fw.tcp({ src: REMOTE, dst: LOCAL, sport: 40000, dport: 22, flags: "A", seq: 2, ack: 10 });
    assert.equal(again.rule, fw.rule("INPUT", 0));
    assert.equal(fw.rule("INPUT", 0).counters.packets, 1);
  });

  it("a drop in FORWARD after a DNAT binding frees the entry too", () => {
    const fw = rig(ipt({ nat: ["-A PREROUTING -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.0.5"], filter: [] }, { "filter:FORWARD": "DROP" }));
    const r = fw.tcp({ src: REMOTE, dst: "203.0.113.10", sport: 40000, dport: 80, flags: "S", seq: 1 });
    assert.equal(r.verdict, VERDICT.DROP);
    assert.equal(r.hook, "forward");
    assert.equal(fw.tr.count, 0);
    assert.equal(fw.rule("PREROUTING", 0, "nat").counters.packets, 1);
  });
});

describe("routing and translated packets", () => {
  it("to a local address: INPUT; from one: OUTPUT; otherwise FORWARD then POSTROUTING", () => {
    const text = ipt({
      filter: ["-A INPUT -j ACCEPT", "-A FORWARD -j ACCEPT", "-A OUTPUT -j ACCEPT"],
      mangle: ["-A POSTROUTING -j ACCEPT"],
    });
    const fw = rig(text, { local: ["eth0=192.0.2.1/24"] });
    assert.equal(fw.udp({ src: REMOTE, dst: LOCAL, sport: 1, dport: 2 }).route, ROUTE.INPUT);
    assert.equal(fw.udp({ src: LOCAL, dst: REMOTE, sport: 2, dport: 1 }).route, ROUTE.OUTPUT);
    assert.equal(fw.udp({ src: REMOTE, dst: "203.0.113.9", sport: 3, dport: 4 }).route, ROUTE.FORWARD);
    assert.deepEqual(
      ["INPUT", "FORWARD", "OUTPUT"].map((c) => fw.rule(c, 0).counters.packets),
      [1, 1, 1],
    );
    assert.equal(fw.rule("POSTROUTING", 0, "mangle").counters.packets, 2);
    assert.deepEqual(fw.path.stats.byRoute, { input: 1, forward: 1, output: 1 });
  });

  it("counts the IP datagram length as bytes, and interface names from the host model", () => {
    const text = ipt({ filter: ["-A FORWARD -i eth1 -o eth0 -j ACCEPT", "-A FORWARD -j DROP"] });
    const fw = rig(text, { local: ["eth0=203.0.113.1/24", "eth1=192.168.10.1/24"], host: { defaultIface: "eth0" } });
    const r = fw.udp({ src: "192.168.10.5", dst: REMOTE, sport: 5000, dport: 53, payload: 72 });
    assert.equal(r.verdict, VERDICT.ACCEPT);
    assert.deepEqual({ ...fw.rule("FORWARD", 0).counters }, { packets: 1, bytes: 20 + 8 + 72 });
    const back = fw.udp({ src: REMOTE, dst: "192.168.10.5", sport: 53, dport: 5000, payload: 100 });
    assert.equal(back.verdict, VERDICT.DROP);
    assert.equal(back.rule, fw.rule("FORWARD", 1));
    assert.equal(back.dropReason, DROP_REASON.RULE);
  });

  it("DNAT: FORWARD and the routing decision see the translated destination; replies are translated back", () => {
    const text = ipt(
      {
        nat: ["-A PREROUTING -d 203.0.113.1/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.0.5:8080"],
        filter: [
          "-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
          "-A FORWARD -d 10.0.0.5/32 -p tcp -m tcp --dport 8080 -m conntrack --ctstate DNAT -j ACCEPT",
        ],
      },
      { "filter:FORWARD": "DROP", "filter:INPUT": "DROP" },
    );
    const fw = rig(text, { local: ["eth0=203.0.113.1/24"] });
    const r = fw.tcp({ src: REMOTE, dst: "203.0.113.1", sport: 40000, dport: 80, flags: "S", seq: 1 });
    assert.equal(r.verdict, VERDICT.ACCEPT);
    assert.equal(r.route, ROUTE.FORWARD);
    assert.equal(r.translated, true);
    assert.equal(fw.view.dport, 8080);
    assert.equal(fw.rule("FORWARD", 1).counters.packets, 1);
    assert.equal(entryOf(fw.tr, r.slot).status & (IPS.DST_NAT | IPS.DST_NAT_DONE | IPS.SRC_NAT_DONE), IPS.DST_NAT | IPS.DST_NAT_DONE | IPS.SRC_NAT_DONE);
    assert.deepEqual(fw.table(), [
      "tcp      6 120 SYN_SENT src=198.51.100.7 dst=203.0.113.1 sport=40000 dport=80 [UNREPLIED] src=10.0.0.5 dst=198.51.100.7 sport=8080 dport=40000",
    ]);
    const back = fw.tcp({ src: "10.0.0.5", dst: REMOTE, sport: 8080, dport: 40000, flags: "SA", seq: 100, ack: 2 });
    assert.equal(back.verdict, VERDICT.ACCEPT);
    assert.equal(back.state, CT_STATE.ESTABLISHED);
    assert.equal(fw.view.src[0], 0xcb007101);
    assert.equal(fw.view.sport, 80);
  });

  it("a CT --zone template and CONNMARK reach the entry", () => {
    const text = ipt({
      raw: ["-A PREROUTING -s 198.51.100.0/24 -j CT --zone 7"],
      mangle: ["-A PREROUTING -j CONNMARK --set-xmark 0x2a/0xffffffff"],
    });
    const fw = rig(text);
    const r = fw.udp({ src: REMOTE, dst: "203.0.113.9", sport: 3, dport: 4 });
    assert.equal(entryOf(fw.tr, r.slot).zone, 7);
    assert.equal(entryOf(fw.tr, r.slot).mark, 0x2a);
    assert.match(fw.tr.formatTable({ extended: true })[0]!, /mark=42 zone=7 use=1$/);
  });
});
