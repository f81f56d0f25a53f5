import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { analyzeRuleset } from "../../src/firewall/analysis/analyze.js";
import { boxOf, boxesOverlap, mirrorBox } from "../../src/firewall/analysis/box.js";
import { analysisToJson, formatAnalysis } from "../../src/firewall/analysis/format.js";
import { notrackRulesFor } from "../../src/firewall/analysis/notrack.js";
import { parseSelector } from "../../src/firewall/analysis/selector.js";
import { ruleTrackingReasons } from "../../src/firewall/tracking.js";
import { RulesetSyntaxError } from "../../src/firewall/errors.js";
import { parseIptables } from "../../src/firewall/iptables.js";
import { loadRuleset } from "../../src/firewall/load.js";
import type { Rule, Ruleset } from "../../src/firewall/model.js";
import { parseNftJson } from "../../src/firewall/nft.js";
import { corpus } from "./helpers.js";

function load(name: string): Ruleset {
  return loadRuleset(corpus(name), { file: name });
}

function rules(rs: Ruleset): Rule[] {
  return rs.tables.flatMap((t) => t.chains.flatMap((c) => c.rules));
}

function modules(rs: Ruleset, needle: string): string[] {
  const r = rules(rs).find((x) => x.text.includes(needle));
  if (!r) throw new Error(`no rule containing ${needle}`);
  return ruleTrackingReasons(r, rs).map((x) => x.module);
}

describe("ruleTrackingReasons() follows nf_ct_netns_get callers", () => {
  const v4 = load("all-matches.v4.rules");
  const cases: Array<[string, string[]]> = [
    ["--ctstate RELATED,ESTABLISHED -j ACCEPT", ["xt_conntrack"]],
    ["-m state --state INVALID", ["xt_state"]],
    ["--ctstatus SEEN_REPLY,ASSURED", ["xt_conntrack", "xt_conntrack", "xt_conntrack", "xt_conntrack", "xt_conntrack", "xt_conntrack"]],
    ["--connlimit-above 10", ["xt_connlimit"]],
    ["-m connmark ! --mark 0x2", ["xt_connmark"]],
    ["-m helper --helper ftp", ["xt_helper"]],
    ["-j CT --helper ftp", ["xt_CT"]],
    ["-j CT --zone 5", ["xt_CT"]],
    ["-j CONNMARK --save-mark", ["xt_CONNMARK"]],
    ["DNAT --to-destination 10.0.0.5:80", ["xt_nat"]],
    ["MASQUERADE --random", ["xt_MASQUERADE"]],
    ["REDIRECT", ["xt_REDIRECT"]],
    ["SYNPROXY", ["xt_SYNPROXY"]],
    // These do not register conntrack hooks.
    ["--dport 53 -j CT --notrack", []],
    ["-j NOTRACK", []],
    ["--limit 5/sec", []],
    ["--update --seconds 60", []],
    ["--mode random", []],
    ["-j MARK --set-xmark 0x8/0xf", []],
    ["-m mark ! --mark 0x1", []],
  ];
  for (const [needle, want] of cases) {
    it(`${needle} → ${want.length ? want.join(", ") : "no tracking"}`, () => assert.deepEqual(modules(v4, needle), want));
  }

  it("names nft modules for ct expressions, ct count, NAT statements and ct mark set", () => {
    const nft = load("all-matches.nft.json");
    assert.deepEqual(modules(nft, "ct state vmap"), ["nft_ct"]);
    assert.deepEqual(modules(nft, "ct count over 10"), ["nft_connlimit"]);
    assert.deepEqual(modules(nft, "dnat to 10.0.0.5:80"), ["nft_nat"]);
    assert.deepEqual(modules(nft, "masquerade"), ["nft_masq"]);
    assert.deepEqual(modules(nft, "redirect to :22"), ["nft_redir"]);
    assert.deepEqual(modules(nft, "ct mark set 7"), ["nft_ct"]);
    assert.deepEqual(modules(nft, "ct helper set"), ["nft_ct"]);
    assert.deepEqual(modules(nft, "ip saddr . ct state"), ["nft_ct"]);
    assert.deepEqual(modules(nft, "udp dport 53 notrack"), []);
    assert.deepEqual(modules(nft, "limit rate over"), []);
  });
});

describe("analyzeRuleset(): tracking", () => {
  it("tells which families get conntrack hooks", () => {
    const fam = (f: string) => analyzeRuleset(load(f)).trackedFamilies;
    assert.deepEqual(fam("all-matches.v4.rules"), { ipv4: true, ipv6: false });
    assert.deepEqual(fam("all-matches.v6.rules"), { ipv4: false, ipv6: true });
    // ct state in an inet table starts tracking for both families.
    assert.deepEqual(fam("webserver-ssh.nft.json"), { ipv4: true, ipv6: true });
    assert.deepEqual(fam("stateless.rules"), { ipv4: false, ipv6: false });
    assert.deepEqual(fam("stateless.nft.json"), { ipv4: false, ipv6: false });
  });

  it("recognises a ruleset that runs with no tracking at all", () => {
    const a = analyzeRuleset(load("stateless.rules"));
    assert.equal(a.noTracking, true);
    assert.equal(a.trackingRules.length, 0);
    assert.equal(a.stateless.possible, true);
    assert.deepEqual(a.candidates, []);
  });

  it("counts a lone ct helper object (it tracks by existing)", () => {
    const rs = parseNftJson(
      JSON.stringify({
        nftables: [{ table: { family: "ip", name: "t" } }, { "ct helper": { family: "ip", table: "t", name: "ftp", type: "ftp", protocol: "tcp" } }],
      }),
      { file: "h.json" },
    );
    const a = analyzeRuleset(rs);
    assert.deepEqual([a.noTracking, a.trackedFamilies.ipv4, a.trackingObjects.length], [false, true, 1]);
  });

  it("counts rules in chains nothing jumps to", () => {
    const rs = parseIptables("*filter\n:INPUT ACCEPT [0:0]\n:ORPHAN - [0:0]\n-A ORPHAN -m state --state NEW -j ACCEPT\nCOMMIT\n", { file: "o" });
    assert.equal(analyzeRuleset(rs).noTracking, false);
  });

  it("says whether stateless operation is possible and what blocks it", () => {
    const web = analyzeRuleset(load("webserver-ssh.rules"));
    assert.equal(web.stateless.possible, true);
    const gw = analyzeRuleset(load("nat-gateway.rules"));
    assert.equal(gw.stateless.possible, false);
    assert.deepEqual(
      [...new Set(gw.stateless.blockers.filter((b) => !b.replaceable).map((b) => b.reason.feature))],
      ["-m conntrack --ctstate", "DNAT", "MASQUERADE"],
    );
  });

  it("does not touch the model's counters", () => {
    const rs = load("nat-gateway.rules");
    const before = JSON.stringify(rules(rs).map((r) => r.counters));
    analyzeRuleset(rs);
    notrackRulesFor(rs, "udp dport 53");
    assert.equal(JSON.stringify(rules(rs).map((r) => r.counters)), before);
  });
});

describe("analyzeRuleset(): NOTRACK candidates", () => {
  it("finds the LAN services of a NAT gateway and generates raw rules for both directions", () => {
    const rs = load("nat-gateway.rules");
    const a = analyzeRuleset(rs);
    assert.deepEqual(
      a.candidates.map((c) => c.description),
      ["ipv4 udp dport 53 iif eth1 (to-host)", "ipv4 udp dport 67 iif eth1 (to-host)", "ipv4 tcp dport 22 iif eth1 (to-host)"],
    );
    assert.deepEqual(
      a.candidates[0]!.rules.map((g) => g.iptables),
      ["-A PREROUTING -i eth1 -p udp -m udp --dport 53 -j CT --notrack", "-A OUTPUT -o eth1 -p udp -m udp --sport 53 -j CT --notrack"],
    );
    assert.deepEqual(
      a.candidates[0]!.rules.map((g) => g.nft),
      ['iifname "eth1" meta nfproto ipv4 udp dport 53 notrack', 'oifname "eth1" meta nfproto ipv4 udp sport 53 notrack'].map((x) =>
        x
          .replace('iifname "eth1" meta nfproto ipv4', 'meta nfproto ipv4 iifname "eth1"')
          .replace('oifname "eth1" meta nfproto ipv4', 'meta nfproto ipv4 oifname "eth1"'),
      ),
    );
    assert.deepEqual(a.candidates[0]!.filterRules, []);
    assert.ok(a.candidates[2]!.notes.some((n) => n.startsWith("TCP without tracking")));
    assert.deepEqual(
      a.candidates[0]!.checks.map((c) => [c.direction, c.state, c.verdict]),
      [
        ["original", "untracked", "accept"],
        ["reply", "untracked", "accept"],
      ],
    );
  });

  it("adds filter rules when untracked replies would be dropped", () => {
    const rs = parseIptables(
      "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT DROP [0:0]\n-A INPUT -p udp -m udp --dport 53 -j ACCEPT\n-A OUTPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT\nCOMMIT\n",
      { file: "r" },
    );
    const a = analyzeRuleset(rs);
    assert.equal(a.candidates.length, 1);
    const c = a.candidates[0]!;
    assert.deepEqual(
      c.filterRules.map((g) => g.iptables),
      ["-A OUTPUT -p udp -m udp --sport 53 -j ACCEPT"],
    );
    assert.ok(
      c.notes.some(
        (n) =>
          n ===
          'reply packets are accepted today as ESTABLISHED but would be dropped as UNTRACKED by the policy of chain "OUTPUT": add the filter rule(s) shown',
      ),
    );
    const text = formatAnalysis(a, rs);
    assert.ok(text.includes("      *filter\n      -I OUTPUT -p udp -m udp --sport 53 -j ACCEPT\n      COMMIT"), text);
  });

  it("excludes traffic a NAT rule may translate (Docker's published port)", () => {
    const a = analyzeRuleset(load("docker.rules"));
    assert.deepEqual(a.candidates, []);
    assert.equal(a.excluded.length, 1);
    assert.equal(a.excluded[0]!.reason, "NAT needs tracking: a NAT rule on its path may translate it");
  });

  it("excludes traffic a stateful rule relies on", () => {
    const rs = parseIptables(
      "*filter\n:INPUT DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -p udp -m udp --dport 53 -j ACCEPT\n-A INPUT -p udp -m udp --dport 53 -m conntrack --ctstate NEW -j LOG\nCOMMIT\n",
      { file: "r" },
    );
    const a = analyzeRuleset(rs);
    assert.deepEqual(a.candidates, []);
    assert.equal(a.excluded[0]!.reason, "a stateful rule matches this traffic and relies on its conntrack state");
  });

  it("skips traffic that is already untracked both ways", () => {
    const a = analyzeRuleset(load("dns-notrack.rules"));
    assert.deepEqual(a.candidates, []);
    assert.deepEqual(a.warnings, []);
    assert.equal(a.notrackRules.length, 2);
    assert.deepEqual(analyzeRuleset(load("dns-notrack.nft.json")).warnings, []);
  });
});

describe("analyzeRuleset(): warnings", () => {
  for (const f of ["notrack-broken.rules", "notrack-broken.nft.json"]) {
    it(`flags one-sided NOTRACK, UNTRACKED drops, NAT and stateful conflicts in ${f}`, () => {
      const a = analyzeRuleset(load(f));
      assert.deepEqual(
        a.warnings.map((w) => w.code),
        [
          "one-sided-notrack",
          "untracked-dropped",
          "one-sided-notrack",
          "notrack-breaks-stateful",
          "untracked-dropped",
          "one-sided-notrack",
          "nat-needs-tracking",
          "untracked-dropped",
        ],
      );
      const est = a.warnings.find((w) => w.code === "untracked-dropped")!;
      assert.match(est.message, /the filter accepts this traffic only as ESTABLISHED,RELATED/);
      const nat = a.warnings.find((w) => w.code === "nat-needs-tracking")!;
      assert.equal(nat.rules.length, 2);
      assert.ok(nat.rules[1]!.actions.some((x) => x.kind === "nat"));
    });
  }

  it("notes rules skipped as unsupported", () => {
    const rs = parseIptables("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m string --string x --algo bm -j DROP\nCOMMIT\n", { file: "r", allowUnsupported: true });
    const a = analyzeRuleset(rs);
    assert.deepEqual(
      a.warnings.map((w) => [w.code, w.severity]),
      [["skipped-rules", "info"]],
    );
  });
});

describe("notrackRulesFor()", () => {
  it("gives the four raw rules in iptables-save form", () => {
    const s = notrackRulesFor(load("dns-notrack.rules"), "udp dport 53");
    assert.equal(
      s.text,
      [
        "*raw",
        "-A PREROUTING -p udp -m udp --dport 53 -j CT --notrack",
        "-A PREROUTING -p udp -m udp --sport 53 -j CT --notrack",
        "-A OUTPUT -p udp -m udp --sport 53 -j CT --notrack",
        "-A OUTPUT -p udp -m udp --dport 53 -j CT --notrack",
        "COMMIT",
        "",
      ].join("\n"),
    );
    assert.deepEqual(
      s.rules.map((g) => `${g.hook}/${g.direction}`),
      ["prerouting/original", "prerouting/reply", "output/reply", "output/original"],
    );
    // The snippet is itself valid iptables-restore input.
    const back = parseIptables(s.text, { file: "snippet" });
    assert.equal(back.tables[0]!.chainByName.get("PREROUTING")!.rules.length, 2);
  });

  it("keeps addresses, interfaces and port sets, with interfaces valid for each hook", () => {
    const s = notrackRulesFor(load("nat-gateway.rules"), "ip saddr 10.0.0.0/8 udp dport { 53, 853 } iif eth0");
    assert.deepEqual(
      s.rules.map((g) => g.iptables),
      [
        "-A PREROUTING -s 10.0.0.0/8 -i eth0 -p udp -m multiport --dports 53,853 -j CT --notrack",
        "-A PREROUTING -d 10.0.0.0/8 -i eth0 -p udp -m multiport --sports 53,853 -j CT --notrack",
        "-A OUTPUT -d 10.0.0.0/8 -o eth0 -p udp -m multiport --sports 53,853 -j CT --notrack",
        "-A OUTPUT -s 10.0.0.0/8 -o eth0 -p udp -m multiport --dports 53,853 -j CT --notrack",
      ],
    );
  });

  it("adds to the ruleset's own nft raw chains", () => {
    const s = notrackRulesFor(load("dns-notrack.nft.json"), "tcp dport 22-25 daddr 2001:db8::/64");
    assert.equal(
      s.text,
      [
        "add rule inet raw prerouting ip6 daddr 2001:db8::/64 tcp dport 22-25 notrack",
        "add rule inet raw prerouting ip6 saddr 2001:db8::/64 tcp sport 22-25 notrack",
        "add rule inet raw output ip6 saddr 2001:db8::/64 tcp sport 22-25 notrack",
        "add rule inet raw output ip6 daddr 2001:db8::/64 tcp dport 22-25 notrack",
        "",
      ].join("\n"),
    );
  });

  it("creates a raw table when an nft ruleset has none", () => {
    const s = notrackRulesFor(load("nat-gateway.nft.json"), "udp dport 53");
    assert.ok(s.text.startsWith("table inet ctlab_raw {\n\tchain prerouting {\n\t\ttype filter hook prerouting priority raw; policy accept;\n\t}\n"));
    assert.ok(s.text.endsWith("add rule inet ctlab_raw output udp dport 53 notrack\n"));
  });

  it("warns about NAT and stateful rules that the selected traffic meets", () => {
    const s = notrackRulesFor(load("nat-gateway.rules"), "tcp dport 80");
    assert.ok(s.warnings.some((w) => w.code === "nat-needs-tracking"));
    const w = notrackRulesFor(load("webserver-ssh.rules"), "tcp dport 22");
    assert.ok(w.warnings.some((x) => x.code === "notrack-breaks-stateful"));
    const none = notrackRulesFor(load("stateless.rules"), "udp dport 53");
    assert.ok(none.warnings.some((x) => x.message.startsWith("nothing in this ruleset registers conntrack hooks")));
  });

  it("rejects malformed selectors with the column", () => {
    const bad: Array<[string, string]> = [
      ["udp dport 99999", '<selector>:1:11: invalid port "99999"'],
      ["dport 53", "<selector>:1:1: ports need a protocol (tcp, udp, sctp, udplite or dccp)"],
      ["udp dport 53 frob", '<selector>:1:14: unknown selector word "frob": expected a protocol, sport, dport, saddr, daddr, iif or oif'],
      ["udp dport { 53, 54", '<selector>:1:19: missing "}"'],
      ["tcp saddr 10.0.0.0/33", '<selector>:1:11: invalid address "10.0.0.0/33"'],
      ["", "<selector>:1:1: empty selector: name at least a protocol"],
      ["udp udp", '<selector>:1:5: "protocol" given twice'],
    ];
    for (const [sel, msg] of bad) {
      assert.throws(
        () => parseSelector(sel),
        (e: unknown) => e instanceof RulesetSyntaxError && e.message === msg,
        sel,
      );
    }
    assert.throws(() => notrackRulesFor(load("dns-notrack.rules"), "ip6 udp dport 53"), {
      message: "<selector>:1:1: the selector is for IPv6 but the ruleset is iptables",
    });
  });
});

describe("traffic boxes", () => {
  it("overlap and mirror", () => {
    const a = parseSelector("udp dport 53");
    const b = parseSelector("udp sport 53");
    assert.equal(boxesOverlap(a, b), true); // a query from port 53 to port 53
    assert.equal(boxesOverlap(parseSelector("udp dport 53"), parseSelector("tcp dport 53")), false);
    assert.equal(boxesOverlap(parseSelector("udp dport 53 iif eth0"), parseSelector("udp dport 53 iif eth1")), false);
    assert.equal(boxesOverlap(parseSelector("udp dport 53 iif eth+"), parseSelector("udp iif eth1")), true);
    assert.deepEqual(mirrorBox(a).sport?.pairs(), [[53, 53]]);
    const r = rules(load("docker.rules")).find((x) => x.text.includes("-j DNAT"))!;
    const box = boxOf(r);
    assert.deepEqual([box.dport?.pairs(), box.approximate], [[[8080, 8080]], true]);
  });
});

describe("formatAnalysis() and analysisToJson()", () => {
  it("prints every section", () => {
    const rs = load("notrack-broken.rules");
    const text = formatAnalysis(analyzeRuleset(rs), rs);
    for (const heading of ["Ruleset notrack-broken.rules (iptables-save, 6 rules)", "Connection tracking", "Stateless operation", "NOTRACK", "Warnings"]) {
      assert.ok(text.includes(heading), heading);
    }
    assert.ok(
      text.includes(
        "    notrack-broken.rules:25:1  -A PREROUTING -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.0.0.5:80\n      needs conntrack: DNAT (xt_nat)",
      ),
    );
    assert.ok(text.includes("  warning [nat-needs-tracking] NOTRACK of ipv4 tcp dport 8080 overlaps a NAT rule at notrack-broken.rules:25:1"));
  });

  it("gives plain JSON with rules by reference", () => {
    const j = analysisToJson(analyzeRuleset(load("nat-gateway.rules")));
    const round = JSON.parse(JSON.stringify(j)) as {
      tracking: { ipv4: boolean; rules: Array<{ rule: { position: string; text: string }; reasons: Array<{ module: string }> }> };
      candidates: Array<{ traffic: string; rules: Array<{ iptables: string; nft: string }> }>;
      stateless: { possible: boolean };
    };
    assert.equal(round.tracking.ipv4, true);
    assert.equal(round.tracking.rules[0]!.rule.position, "nat-gateway.rules:7:1");
    assert.equal(round.tracking.rules[0]!.reasons[0]!.module, "xt_conntrack");
    assert.equal(round.candidates[0]!.traffic, "ipv4 udp dport 53 iif eth1 (to-host)");
    assert.equal(round.stateless.possible, false);
  });
});
