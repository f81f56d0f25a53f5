/**
 * fib, numgen, dynamic set updates and MSS clamping (nft_fib, nft_numgen,
 * nft_dynset, nft_exthdr), from `nft -j list ruleset` of
 * rulesets/src/nft-features.nft, through both evaluators.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CompiledRuleset, VERDICT, evaluateChain } from "../../src/firewall/eval.js";
import type { PacketContext } from "../../src/firewall/eval.js";
import type { Chain, Ruleset } from "../../src/firewall/model.js";
import { parseNftJson } from "../../src/firewall/nft.js";
import { ADDRTYPE_RTN, parseAddr } from "../../src/firewall/values.js";
import { chain, contextFor, corpus, packet } from "./helpers.js";

const EVALUATORS = [
  { name: "reference", make: (rs: Ruleset) => (c: Chain, ctx: PacketContext) => evaluateChain(rs, c, ctx) },
  {
    name: "compiled",
    make: (rs: Ruleset) => {
      const compiled = new CompiledRuleset(rs);
      return (c: Chain, ctx: PacketContext) => compiled.evaluate(c, ctx);
    },
  },
];

const load = () => parseNftJson(corpus("nft-features.nft.json"), { file: "nft-features.nft.json" });

/** A host with 192.0.2.1 on eth0, 10.0.0.0/8 behind eth1 and the default route on eth0. */
function ctxFor(rs: Ruleset, random?: () => number): PacketContext {
  const local = parseAddr("192.0.2.1")!.words;
  const ctx = contextFor(rs, {
    routeOif: (family, a) => (family === 4 && a[0] === local[0] ? null : family === 4 && a[0]! >>> 24 === 10 ? "eth1" : "eth0"),
    addrType: (family, a, iface) =>
      family === 4 && a[0] === local[0] ? (iface === null || iface === "eth0" ? ADDRTYPE_RTN.LOCAL : ADDRTYPE_RTN.UNICAST) : ADDRTYPE_RTN.UNICAST,
    ...(random ? { random32: random } : {}),
  });
  return ctx;
}

for (const ev of EVALUATORS) {
  describe(`nft features (${ev.name})`, () => {
    it("fib daddr type local: only packets to the host's own addresses", () => {
      const rs = load();
      const run = ev.make(rs);
      const pre = chain(rs, "t", "pre");
      const ctx = ctxFor(rs);
      assert.equal(run(pre, packet({ dst: "192.0.2.1", iif: "eth0", sport: 40000, dport: 22, hook: "prerouting" }, ctx)), VERDICT.ACCEPT);
      assert.equal(ctx.verdictRule, pre.rules[0]);
      run(pre, packet({ src: "10.1.1.1", dst: "198.51.100.9", iif: "eth1", dport: 22, hook: "prerouting" }, ctx));
      assert.notEqual(ctx.verdictRule, pre.rules[0]);
    });

    it("fib saddr . iif oif missing: drops a source whose route leaves by another interface (strict rp_filter)", () => {
      const rs = load();
      const run = ev.make(rs);
      const pre = chain(rs, "t", "pre");
      const ctx = ctxFor(rs);
      assert.equal(run(pre, packet({ src: "10.1.1.1", dst: "198.51.100.9", iif: "eth0", dport: 443, hook: "prerouting" }, ctx)), VERDICT.DROP);
      assert.equal(ctx.verdictRule, pre.rules[1]);
      assert.equal(run(pre, packet({ src: "10.1.1.1", dst: "198.51.100.9", iif: "eth1", dport: 443, hook: "prerouting" }, ctx)), VERDICT.ACCEPT);
      // A DHCP discover (0.0.0.0 → 255.255.255.255) passes on any interface, as in nft_fib4_eval.
      assert.equal(
        run(pre, packet({ src: "0.0.0.0", dst: "255.255.255.255", proto: "udp", sport: 68, dport: 67, iif: "eth1", hook: "prerouting" }, ctx)),
        VERDICT.ACCEPT,
      );
      // A packet claiming the host's own address as source has no route back: dropped.
      assert.equal(run(pre, packet({ src: "192.0.2.1", dst: "198.51.100.9", iif: "eth0", dport: 443, hook: "prerouting" }, ctx)), VERDICT.DROP);
    });

    it("fib daddr . iif type: the address type as seen from the input interface", () => {
      const rs = load();
      const run = ev.make(rs);
      const pre = chain(rs, "t", "pre");
      const ctx = ctxFor(rs);
      // 192.0.2.1 is local on eth0 but unicast seen from eth1.
      run(pre, packet({ src: "198.51.100.7", dst: "192.0.2.1", proto: "udp", dport: 53, iif: "eth0", hook: "prerouting" }, ctx));
      assert.equal(ctx.verdictRule, null);
      run(pre, packet({ src: "10.9.9.9", dst: "192.0.2.1", proto: "udp", dport: 53, iif: "eth1", hook: "prerouting" }, ctx));
      assert.equal(ctx.verdictRule, pre.rules[2]);
    });

    it("update/add @set: elements with the set's and the element's timeout, a full set breaks the rule", () => {
      const rs = load();
      const run = ev.make(rs);
      const pre = chain(rs, "t", "pre");
      const ctx = ctxFor(rs);
      const probe = (src: string, nowMs: number) => {
        run(pre, packet({ src, dst: "198.51.100.9", proto: "udp", dport: 5002, iif: "eth0", hook: "prerouting", nowMs }, ctx));
        return ctx.verdictRule === pre.rules[5];
      };
      const send = (src: string, dport: number, nowMs: number) =>
        run(pre, packet({ src, dst: "198.51.100.9", proto: "udp", dport, iif: "eth0", hook: "prerouting", nowMs }, ctx));
      assert.equal(probe("198.51.100.1", 0), false);
      send("198.51.100.1", 5000, 0); // update: set timeout 60 s
      assert.equal(probe("198.51.100.1", 59_999), true);
      send("198.51.100.1", 5000, 30_000); // update refreshes
      assert.equal(probe("198.51.100.1", 89_999), true);
      assert.equal(probe("198.51.100.1", 90_000), false);
      send("198.51.100.2", 5001, 100_000); // add with the element's own 5 s
      send("198.51.100.2", 5001, 104_000); // add does not refresh
      assert.equal(probe("198.51.100.2", 104_999), true);
      assert.equal(probe("198.51.100.2", 105_000), false);
      // size 2: a third live element is refused (the rule breaks), an expired one frees its place.
      send("198.51.100.3", 5000, 200_000);
      send("198.51.100.4", 5000, 200_000);
      send("198.51.100.5", 5000, 200_000);
      assert.deepEqual(
        ["198.51.100.3", "198.51.100.4", "198.51.100.5"].map((s) => probe(s, 200_001)),
        [true, true, false],
      );
      send("198.51.100.5", 5000, 260_000);
      assert.equal(probe("198.51.100.5", 260_001), true);
    });

    it("numgen random mod 2: reciprocal_scale of the random value picks the element", () => {
      const rs = load();
      const run = ev.make(rs);
      const pre = chain(rs, "t", "pre");
      const values = [0x00000000, 0x7fffffff, 0x80000000, 0xffffffff];
      let i = 0;
      const ctx = ctxFor(rs, () => values[i++ % values.length]!);
      const got = values.map(() => run(pre, packet({ src: "198.51.100.7", dst: "192.0.2.9", dport: 80, iif: "eth0", hook: "prerouting" }, ctx)));
      assert.deepEqual(got, [VERDICT.ACCEPT, VERDICT.ACCEPT, VERDICT.DROP, VERDICT.DROP]);
    });

    it("numgen inc mod 3 offset 1: round robin from the offset, per rule", () => {
      const rs = load();
      const run = ev.make(rs);
      const pre = chain(rs, "t", "pre");
      const ctx = ctxFor(rs);
      const ep0 = chain(rs, "t", "ep0").rules[0]!;
      const ep1 = chain(rs, "t", "ep1").rules[0]!;
      const picks = Array.from({ length: 6 }, () => {
        run(pre, packet({ src: "198.51.100.7", dst: "192.0.2.9", dport: 81, iif: "eth0", hook: "prerouting" }, ctx));
        return ctx.verdictRule === ep0 ? "ep0" : ctx.verdictRule === ep1 ? "ep1" : ctx.verdictRule === pre.rules[7] ? "drop" : "?";
      });
      assert.deepEqual(picks, ["ep0", "ep1", "drop", "ep0", "ep1", "drop"]);
    });

    it("tcp option maxseg size set: read, no effect on the verdict", () => {
      const rs = load();
      const run = ev.make(rs);
      const clamp = chain(rs, "t", "clamp");
      assert.deepEqual(
        clamp.rules.map((r) => r.actions[0]),
        [
          { kind: "mangle", name: "tcp option maxseg size" },
          { kind: "mangle", name: "tcp option maxseg size" },
        ],
      );
      const ctx = ctxFor(rs);
      assert.equal(run(clamp, packet({ src: "10.1.1.1", dst: "198.51.100.9", dport: 443, iif: "eth1", oif: "wan", hook: "forward" }, ctx)), VERDICT.ACCEPT);
    });
  });
}
