import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RulesetSyntaxError } from "../../src/firewall/errors.js";
import { detectFormat, loadRuleset } from "../../src/firewall/load.js";
import type { Action, Match, Rule, Ruleset } from "../../src/firewall/model.js";
import { parseNftJson } from "../../src/firewall/nft.js";
import { chain, corpus } from "./helpers.js";

function rules(rs: Ruleset): Rule[] {
  return rs.tables.flatMap((t) => t.chains.flatMap((c) => c.rules));
}

/** The rule read from `$.nftables[i]`. */
function at(rs: Ruleset, i: number): Rule {
  const r = rules(rs).find((x) => x.pos.kind === "json" && x.pos.path === `$.nftables[${i}].rule`);
  if (!r) throw new Error(`no rule at $.nftables[${i}]`);
  return r;
}

function kinds(r: Rule): string[] {
  return r.matches.map((m) => m.kind);
}

function only<K extends Match["kind"]>(r: Rule, kind: K): Extract<Match, { kind: K }> {
  const all = r.matches.filter((m): m is Extract<Match, { kind: K }> => m.kind === kind);
  assert.equal(all.length, 1, `expected one ${kind} match in ${r.text}`);
  return all[0]!;
}

function doc(...items: unknown[]): string {
  return JSON.stringify({
    nftables: [
      { metainfo: { version: "1.0.6", json_schema_version: 1 } },
      { table: { family: "inet", name: "t", handle: 1 } },
      { chain: { family: "inet", table: "t", name: "in", handle: 1, type: "filter", hook: "input", prio: 0, policy: "drop" } },
      { chain: { family: "inet", table: "t", name: "sub", handle: 2 } },
      ...items,
    ],
  });
}

function rule(...expr: unknown[]): unknown {
  return { rule: { family: "inet", table: "t", chain: "in", handle: 9, expr } };
}

function rejects(text: string, message: string, allowUnsupported = false): RulesetSyntaxError {
  let caught: unknown;
  try {
    parseNftJson(text, { file: "rs.json", allowUnsupported });
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof RulesetSyntaxError, `expected RulesetSyntaxError, got ${String(caught)}`);
  assert.equal(caught.message, message);
  return caught;
}

describe("parseNftJson() reads nft -j list ruleset", () => {
  const rs = parseNftJson(corpus("all-matches.nft.json"), { file: "all.json" });

  it("reads tables, base chains, sets, maps and ct objects", () => {
    assert.deepEqual(
      rs.tables.map((t) => `${t.family} ${t.name}`),
      ["inet filter", "ip raw", "ip nat", "ip6 f6"],
    );
    assert.deepEqual(chain(rs, "filter", "input").base, { type: "filter", hook: "input", priority: 0, policy: "drop" });
    assert.deepEqual(chain(rs, "raw", "out").base, { type: "filter", hook: "output", priority: -300, policy: "accept" });
    assert.deepEqual(chain(rs, "nat", "pre").base?.priority, -100);
    const t = rs.tables[0]!;
    assert.deepEqual([...t.sets.keys()], ["blocked4", "svc", "ifs", "portv"]);
    assert.equal(t.sets.get("blocked4")!.elems.length, 3);
    assert.deepEqual(t.sets.get("svc")!.keyTypes, ["ipv4_addr", "inet_service"]);
    assert.deepEqual(t.sets.get("portv")!.verdicts, [{ kind: "accept" }, { kind: "drop" }, { kind: "jump", target: "web" }]);
    assert.deepEqual(
      rs.ctObjects.map((o) => `${o.kind} ${o.name}`),
      ["ct helper ftp-standard"],
    );
    assert.equal(rs.notes.length, 1); // the named counter object
  });

  it("reads ct expressions", () => {
    const vm = at(rs, 10).actions[0]!;
    assert.ok(vm.kind === "vmap");
    assert.deepEqual(vm.keys, ["ctstate"]);
    assert.deepEqual(
      vm.entries.map((e) => [e.elem[0], e.verdict.kind]),
      [
        [{ t: "num", lo: 1, hi: 1 }, "drop"],
        [{ t: "num", lo: 2, hi: 2 }, "accept"],
        [{ t: "num", lo: 4, hi: 4 }, "accept"],
      ],
    );
    const est = at(rs, 11);
    assert.deepEqual([only(est, "ctstate").mask, only(est, "ctstate").neg], [6, false]);
    assert.deepEqual([est.counted, est.counters.packets, est.counters.bytes], [true, 120, 9000]);
    assert.deepEqual([only(at(rs, 12), "ctstate").mask, only(at(rs, 12), "ctstate").neg], [0x48, true]);
    assert.equal(only(at(rs, 13), "ctstatus").mask, 0x20);
    const cm = only(at(rs, 14), "mark");
    assert.deepEqual([cm.source, cm.mask, cm.values.pairs()], ["ct", 0xff, [[1, 1]]]);
    assert.deepEqual(only(at(rs, 16), "ctdir").dir, 1);
    assert.deepEqual(at(rs, 17).matches, [{ kind: "lookup", neg: false, keys: ["ctzone"], elems: [[{ t: "num", lo: 3, hi: 3 }]], setName: null, set: null }]);
    assert.deepEqual(at(rs, 18).matches, [{ kind: "cthelper", neg: false, name: "ftp" }]);
    assert.equal(only(at(rs, 19), "ctaddr").field, "origsrc");
    assert.deepEqual(only(at(rs, 20), "ctport").field, "repldst");
  });

  it("reads interface names, wildcards and named interface sets", () => {
    assert.deepEqual(at(rs, 22).matches[0], { kind: "iface", dir: "in", neg: false, names: [{ name: "eth", prefix: true }] });
    assert.deepEqual(at(rs, 22).matches[1], { kind: "iface", dir: "out", neg: true, names: [{ name: "wg0", prefix: false }] });
    assert.deepEqual(only(at(rs, 23), "iface").names, [
      { name: "eth0", prefix: false },
      { name: "wlan0", prefix: false },
    ]);
  });

  it("puts back the dependencies nft drops from the listing", () => {
    // meta l4proto { tcp, udp } th dport 53
    assert.deepEqual(kinds(at(rs, 24)), ["proto", "proto", "port"]);
    // icmpv6 type {…}: l4proto ipv6-icmp
    const ic = at(rs, 25);
    assert.deepEqual(kinds(ic), ["proto", "icmp"]);
    assert.deepEqual((ic.matches[0] as Extract<Match, { kind: "proto" }>).protos.pairs(), [[58, 58]]);
    // ip saddr in an inet table: nfproto ipv4
    assert.deepEqual(at(rs, 28).matches[0], { kind: "nfproto", neg: false, family: 4 });
    assert.equal(only(at(rs, 28), "addr").set.size, 3);
    // ip6 saddr … tcp dport {…}
    assert.deepEqual(kinds(at(rs, 30)), ["nfproto", "addr", "proto", "port"]);
    assert.deepEqual(only(at(rs, 30), "port").set.pairs(), [
      [22, 22],
      [80, 90],
    ]);
  });

  it("reads concatenations against named and anonymous sets", () => {
    const c = only(at(rs, 31), "lookup");
    assert.deepEqual([c.keys, c.setName, c.elems.length], [["daddr", "dport"], "svc", 2]);
    assert.deepEqual(kinds(at(rs, 31)), ["nfproto", "proto", "lookup"]);
    const c2 = only(at(rs, 32), "lookup");
    assert.deepEqual(c2.keys, ["saddr", "ctstate"]);
    assert.deepEqual(c2.elems[0]![1], { t: "num", lo: 2, hi: 2 });
  });

  it("reads verdict maps, named and anonymous", () => {
    const named = at(rs, 33).actions[0]!;
    assert.ok(named.kind === "vmap" && named.mapName === "portv" && named.entries.length === 3);
    const anon = at(rs, 34).actions[0]!;
    assert.ok(anon.kind === "vmap");
    assert.deepEqual(
      anon.entries.map((e) => e.verdict),
      [{ kind: "accept" }, { kind: "jump", target: "web" }],
    );
  });

  it("reads tcp flags, relational operators and negated sets", () => {
    assert.deepEqual(only(at(rs, 35), "tcpflags"), { kind: "tcpflags", op: "eq", neg: false, mask: 0x17, comp: 0x02 });
    const syn = at(rs, 36);
    assert.deepEqual(only(syn, "tcpflags"), { kind: "tcpflags", op: "any", neg: false, mask: 0x02, comp: 0 });
    assert.deepEqual(only(syn, "connlimit").above, true);
    assert.deepEqual(syn.actions, [{ kind: "reject", with: "tcp reset" }]);
    assert.deepEqual(only(at(rs, 40), "port").neg, true);
    assert.deepEqual(at(rs, 41).matches[1], { kind: "cmp", key: "ttl", op: "<", mask: 0xffffffff, value: 5 });
    const np = only(at(rs, 42), "proto");
    assert.deepEqual(
      [np.neg, np.protos.pairs()],
      [
        true,
        [
          [6, 6],
          [17, 17],
        ],
      ],
    );
  });

  it("reads statements: log, counter, mark and connmark, helper, reject, limit, jumps", () => {
    assert.deepEqual(at(rs, 37).actions, [
      { kind: "log", nflog: false, prefix: "mark: ", level: 4, group: -1 },
      { kind: "counter", name: null },
    ]);
    assert.deepEqual(at(rs, 38).actions[0], { kind: "log", nflog: true, prefix: "grp: ", level: 4, group: 2 });
    const acts = (i: number): Action[] => at(rs, i).actions;
    assert.deepEqual(acts(43), [{ kind: "setmark", target: "meta", value: 5, mask: 0xffffffff }]);
    assert.deepEqual(acts(44), [{ kind: "setmark", target: "meta", value: 16, mask: 16 }]);
    assert.deepEqual(acts(45), [{ kind: "setmark", target: "meta", value: 0, mask: 0xffffff00 }]);
    assert.deepEqual(acts(46), [{ kind: "copymark", to: "ct", nfmask: 0xffffffff, ctmask: 0xffffffff }]);
    assert.deepEqual(acts(47), [{ kind: "copymark", to: "meta", nfmask: 0xffffffff, ctmask: 0xffffffff }]);
    assert.deepEqual(acts(48), [{ kind: "setmark", target: "ct", value: 7, mask: 0xffffffff }]);
    assert.deepEqual(acts(49), [{ kind: "cthelperset", name: "ftp-standard" }]);
    assert.deepEqual(acts(50), [{ kind: "reject", with: "icmpx admin-prohibited" }]);
    assert.deepEqual(acts(52), [{ kind: "reject", with: "icmp host-prohibited" }]);
    assert.deepEqual(only(at(rs, 53), "limit"), {
      kind: "limit",
      over: true,
      rate: 100,
      unitSec: 60,
      burst: 5,
      slot: (only(at(rs, 53), "limit") as { slot: number }).slot,
    });
    assert.deepEqual(acts(54), [{ kind: "counter", name: "cnt1" }]);
    assert.deepEqual(acts(56), [{ kind: "goto", target: "web" }]);
    assert.deepEqual(acts(60), [{ kind: "continue" }]);
    assert.deepEqual(acts(66), [{ kind: "ct", zone: 5, helper: "", timeout: "" }]);
    assert.deepEqual(acts(64), [{ kind: "notrack" }]);
  });

  it("reads NAT statements", () => {
    const nat = (i: number) => {
      const a = at(rs, i).actions[0]!;
      assert.ok(a.kind === "nat");
      return [a.type, a.addrLo?.[0] ?? null, a.addrHi?.[0] ?? null, a.portLo, a.portHi, a.random, a.persistent];
    };
    assert.deepEqual(nat(71), ["dnat", 0x0a000005, 0x0a000005, 80, 80, false, false]);
    assert.deepEqual(nat(72), ["redirect", null, null, 22, 22, false, false]);
    assert.deepEqual(nat(74), ["dnat", 0x0a000006, 0x0a000008, 6000, 6010, false, false]);
    assert.deepEqual(nat(75), ["masquerade", null, null, -1, -1, true, false]);
    assert.deepEqual(nat(76), ["snat", 0x01020304, 0x0102030a, 1024, 2000, false, true]);
  });

  it("renders each rule as one line of nft text for reports", () => {
    assert.equal(at(rs, 36).text, "tcp flags syn tcp dport 22 ct count over 10 reject with tcp reset");
    assert.equal(at(rs, 11).text, "ct state established,related counter packets 120 bytes 9000 accept");
  });

  it("reads the realistic corpus", () => {
    for (const f of ["webserver-ssh", "nat-gateway", "dns-notrack", "notrack-broken", "stateless"]) {
      const r = parseNftJson(corpus(`${f}.nft.json`), { file: f });
      assert.ok(rules(r).length > 0, f);
    }
  });
});

describe("parseNftJson() errors carry the JSON path", () => {
  it("names an unknown jump target", () => {
    const e = rejects(doc(rule({ jump: { target: "nope" } })), 'rs.json:$.nftables[4].rule.expr[0].jump.target: chain "nope" does not exist in table "t"');
    assert.equal(e.jsonPath, "$.nftables[4].rule.expr[0].jump.target");
    assert.equal(e.line, 0);
  });

  it("names a bad value deep inside a match", () => {
    rejects(
      doc(rule({ match: { op: "==", left: { payload: { protocol: "tcp", field: "dport" } }, right: { set: [22, 70000] } } })),
      "rs.json:$.nftables[4].rule.expr[0].match.right.set[1]: value 70000 is out of range",
    );
    rejects(
      doc(rule({ match: { op: "==", left: { payload: { protocol: "ip", field: "saddr" } }, right: "10.0.0.256" } })),
      'rs.json:$.nftables[4].rule.expr[0].match.right: invalid IPv4 address "10.0.0.256"',
    );
  });

  it("rejects prototype keys anywhere", () => {
    const text = doc(rule({ accept: null })).replace('"handle":9', '"handle":9,"__proto__":{"x":1}');
    rejects(text, 'rs.json:$.nftables[4].rule.__proto__: forbidden key "__proto__"');
    rejects('{"nftables":[{"table":{"family":"ip","name":"t","constructor":1}}]}', 'rs.json:$.nftables[0].table.constructor: forbidden key "constructor"');
  });

  it("reports invalid JSON at a line and column", () => {
    const e = rejects('{"nftables": [\n  {"table": }\n]}', 'rs.json:2:13: invalid JSON: unexpected token "}"');
    assert.deepEqual([e.line, e.column], [2, 13]);
    rejects('{"nftables": [1, 2', 'rs.json:1:19: invalid JSON: expected "," or "]", found end of input');
    rejects('{"a": "b\\q"}', "rs.json:1:9: invalid JSON: invalid escape in a string");
    rejects("[".repeat(100000), "rs.json:1:100001: invalid JSON: unexpected end of input");
  });

  it("refuses iptables-nft compat expressions with advice", () => {
    const e = rejects(
      corpus("iptables-nft.nft.json"),
      'rs.json:$.nftables[7].rule.expr[0].xt: unsupported iptables-nft compat expression "xt match conntrack": read the iptables-save output of this ruleset instead, or use --allow-unsupported to skip such rules',
    );
    assert.equal(e.feature, "xt match conntrack");
    assert.equal(e.unsupported, true);
  });

  it("refuses queue unless allowed; a set statement must name an existing set", () => {
    const q = rule({ queue: { num: 3, flags: ["bypass"] } });
    const upd = rule({ set: { op: "add", elem: { payload: { protocol: "ip", field: "saddr" } }, set: "@x" } }, { accept: null });
    rejects(doc(q), 'rs.json:$.nftables[4].rule.expr[0]: unsupported statement "queue": use --allow-unsupported to skip such rules');
    rejects(doc(upd), 'rs.json:$.nftables[4].rule.expr[0].set.set: set "x" does not exist in table "t"');
    const rs = parseNftJson(doc(q, rule({ accept: null })), { file: "rs.json", allowUnsupported: true });
    const rr = chain(rs, "t", "in").rules;
    assert.deepEqual(
      rr.map((r) => r.unsupported),
      ["queue", null],
    );
    assert.deepEqual(rr[0]!.matches, [{ kind: "never", feature: "queue" }]);
    assert.deepEqual(
      rs.skipped.map((s) => (s.pos.kind === "json" ? s.pos.path : "")),
      ["$.nftables[4].rule.expr[0]"],
    );
  });

  it("rejects structural mistakes", () => {
    rejects("[]", 'rs.json:$: expected an object with an "nftables" array');
    rejects('{"nftables":[{"table":{"family":"ip","name":"t"},"chain":{}}]}', "rs.json:$.nftables[0]: expected exactly one key, found 2");
    rejects('{"nftables":[{"chain":{"family":"ip","table":"x","name":"c"}}]}', 'rs.json:$.nftables[0].chain.table: table "ip x" does not exist');
    rejects('{"nftables":[{"table":{"family":"ipx","name":"t"}}]}', 'rs.json:$.nftables[0].table.family: unknown family "ipx"');
    rejects(doc(rule({ match: { op: "~", left: { meta: { key: "mark" } }, right: 1 } })), 'rs.json:$.nftables[4].rule.expr[0].match.op: unknown operator "~"');
    rejects(
      doc({ rule: { family: "inet", table: "t", chain: "sub", expr: [{ jump: { target: "in" } }] } }, rule({ jump: { target: "sub" } })),
      'rs.json:$.nftables[4].rule: chain loop: "in" -> "sub" -> "in"',
    );
  });

  it("notes flowtables instead of failing", () => {
    const rs = parseNftJson(doc({ flowtable: { family: "inet", table: "t", name: "ft", hook: "ingress", prio: 0, dev: ["eth0"] } }), { file: "rs.json" });
    assert.equal(rs.notes[0]!.message, "flowtable ignored: offloaded flows are modelled as ordinary conntrack entries");
  });

  it("accepts nft -j input commands (add, flush ruleset)", () => {
    const text = JSON.stringify({
      nftables: [
        { flush: { ruleset: null } },
        { add: { table: { family: "ip", name: "raw" } } },
        { add: { chain: { family: "ip", table: "raw", name: "pre", type: "filter", hook: "prerouting", prio: "raw", policy: "accept" } } },
        { add: { rule: { family: "ip", table: "raw", chain: "pre", expr: [{ notrack: null }] } } },
      ],
    });
    const rs = parseNftJson(text, { file: "in.json" });
    assert.deepEqual(chain(rs, "raw", "pre").base?.priority, -300);
    assert.deepEqual(chain(rs, "raw", "pre").rules[0]!.actions, [{ kind: "notrack" }]);
  });
});

describe("detectFormat() and loadRuleset()", () => {
  it("tells the three formats apart by content", () => {
    assert.equal(detectFormat(corpus("webserver-ssh.rules")), "iptables");
    assert.equal(detectFormat(corpus("ufw-before.rules")), "iptables");
    assert.equal(detectFormat(corpus("webserver-ssh.nft.json")), "nft-json");
    assert.equal(detectFormat(corpus("src/webserver-ssh.nft")), "nft-text");
    assert.equal(detectFormat("#!/usr/sbin/nft -f\nflush ruleset\n"), "nft-text");
    assert.equal(detectFormat("[0:0] -A INPUT -j ACCEPT\n"), "iptables");
    assert.equal(detectFormat("# nothing\n"), "iptables");
    assert.throws(() => detectFormat("\n  hello world\n", "x"), {
      message: "x:2:3: unrecognised ruleset format: expected iptables-save output, nft JSON or nft text",
    });
  });

  it("loads either syntax", () => {
    assert.equal(loadRuleset(corpus("webserver-ssh.rules"), { file: "a" }).syntax, "iptables");
    assert.equal(loadRuleset(corpus("webserver-ssh.nft.json"), { file: "b" }).syntax, "nft");
  });
});
