/**
 * The parsers' closed error set: whatever the input, only RulesetSyntaxError
 * escapes (anything else is a bug). Inputs are mutations of the corpus, so
 * they reach deep into the grammar; successful parses must also survive
 * serialisation, analysis and evaluation.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { analyzeRuleset } from "../../src/firewall/analysis/analyze.js";
import { analysisToJson, formatAnalysis } from "../../src/firewall/analysis/format.js";
import { notrackRulesFor } from "../../src/firewall/analysis/notrack.js";
import { parseSelector } from "../../src/firewall/analysis/selector.js";
import { RulesetSyntaxError } from "../../src/firewall/errors.js";
import { CompiledRuleset, evaluateChain } from "../../src/firewall/eval.js";
import { parseIpsetSave } from "../../src/firewall/ipset.js";
import { parseIptables, serializeIptables } from "../../src/firewall/iptables.js";
import { detectFormat } from "../../src/firewall/load.js";
import type { Ruleset } from "../../src/firewall/model.js";
import { parseNftJson } from "../../src/firewall/nft.js";
import { contextFor, corpus, packet } from "./helpers.js";

/** Runs per property; raise with CTLAB_FUZZ_RUNS for a longer search. */
const RUNS = Number(process.env["CTLAB_FUZZ_RUNS"] ?? 150);

const TOKENS = [
  " ",
  "\n",
  "\t",
  '"',
  "\\",
  "!",
  "-A INPUT ",
  "-A FORWARD ",
  "-I INPUT 1 ",
  "-N X\n",
  "-j ",
  "-g ",
  "-m ",
  "-p ",
  "--dport ",
  "--sport ",
  "--ctstate ",
  "--state ",
  "--to-destination ",
  "--to-ports ",
  "--limit ",
  "--probability ",
  "--every ",
  "--mark ",
  "--set-xmark ",
  "--match-set ",
  "tcp ",
  "udp ",
  "icmp ",
  "conntrack ",
  "multiport ",
  "recent ",
  "statistic ",
  "DNAT ",
  "CT ",
  "ACCEPT",
  "RETURN",
  "NEW,ESTABLISHED ",
  ":",
  ",",
  "/",
  "-",
  "[",
  "]",
  "[0:0] ",
  "*filter\n",
  "*nat\n",
  "*raw\n",
  "COMMIT\n",
  ":INPUT ACCEPT [0:0]\n",
  ":X - [0:0]\n",
  "0x",
  "65536",
  "4294967296",
  "99999999999999999999",
  "1.2.3.4/33",
  "::1",
  "2001:db8::/129",
  "#",
  "\u0000",
  "\u00e9",
  "\ud83d",
  "__proto__",
];

/** Random edits of a text: deletions, insertions of grammar tokens or random strings, line shuffles. */
function mutated(base: string): fc.Arbitrary<string> {
  // Positions unbiased: fast-check favours small numbers, which would edit only the first line.
  const pos = fc.noBias(fc.integer({ min: 0, max: 1_000_000 })).map((x) => x / 1_000_000);
  const edit = fc.oneof(
    fc.record({ kind: fc.constant("del" as const), at: pos, len: fc.integer({ min: 1, max: 40 }) }),
    fc.record({ kind: fc.constant("ins" as const), at: pos, s: fc.oneof(fc.constantFrom(...TOKENS), fc.string({ maxLength: 8 })) }),
    fc.record({ kind: fc.constant("dup" as const), at: pos, len: fc.integer({ min: 1, max: 200 }) }),
    fc.record({ kind: fc.constant("swap" as const), a: fc.nat(), b: fc.nat() }),
  );
  return fc.array(edit, { minLength: 1, maxLength: 6 }).map((edits) => {
    let s = base;
    for (const e of edits) {
      if (e.kind === "swap") {
        const lines = s.split("\n");
        const a = e.a % lines.length;
        const b = e.b % lines.length;
        [lines[a], lines[b]] = [lines[b]!, lines[a]!];
        s = lines.join("\n");
        continue;
      }
      const at = Math.floor(e.at * s.length);
      if (e.kind === "del") s = s.slice(0, at) + s.slice(at + e.len);
      else if (e.kind === "ins") s = s.slice(0, at) + e.s + s.slice(at);
      else s = s.slice(0, at) + s.slice(at, at + e.len) + s.slice(at);
    }
    return s;
  });
}

/** Runs `f`; any throw other than RulesetSyntaxError fails the property. */
function onlySyntaxErrors<T>(f: () => T): T | null {
  try {
    return f();
  } catch (e) {
    if (e instanceof RulesetSyntaxError) {
      assert.ok(e.message.length > 0 && !e.message.endsWith("."), `message style: ${e.message}`);
      return null;
    }
    throw e;
  }
}

/** What every successfully parsed ruleset must survive. */
function exercise(rs: Ruleset): void {
  if (rs.syntax === "iptables") serializeIptables(rs, { counters: true });
  const a = analyzeRuleset(rs);
  formatAnalysis(a, rs);
  JSON.stringify(analysisToJson(a));
  onlySyntaxErrors(() => notrackRulesFor(rs, "udp dport 53"));
  const compiled = new CompiledRuleset(rs);
  const ctx = contextFor(rs);
  for (const t of rs.tables) {
    for (const c of t.chains) {
      if (!c.base) continue;
      for (const d of [{ dport: 22 }, { proto: "udp" as const, dport: 53, ct: "untracked" as const }, { src: "2001:db8::1", dst: "::1" }]) {
        packet(d, ctx);
        evaluateChain(rs, c, ctx);
        packet(d, ctx);
        compiled.evaluate(c, ctx);
      }
    }
  }
}

describe("fuzz: iptables-save text", () => {
  for (const f of ["all-matches.v4.rules", "all-matches.v6.rules", "kube-proxy.rules", "ufw-before.rules", "docker.rules"]) {
    it(`only RulesetSyntaxError escapes for mutations of ${f}`, () => {
      const base = corpus(f);
      fc.assert(
        fc.property(mutated(base), fc.boolean(), (text, allowUnsupported) => {
          const rs = onlySyntaxErrors(() => parseIptables(text, { file: "fuzz", allowUnsupported }));
          if (rs) exercise(rs);
          onlySyntaxErrors(() => detectFormat(text));
        }),
        { numRuns: RUNS },
      );
    });
  }

  it("only RulesetSyntaxError escapes for random text", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (text) => {
        const rs = onlySyntaxErrors(() => parseIptables(text, { file: "fuzz" }));
        if (rs) exercise(rs);
      }),
      { numRuns: RUNS },
    );
  });
});

/** Random structural edits of a JSON document: replace, delete or retype nodes. */
function jsonMutated(base: unknown): fc.Arbitrary<string> {
  const edit = fc.record({
    pick: fc.noBias(fc.nat()),
    how: fc.constantFrom("replace", "delete", "string", "number", "array", "proto", "deep"),
    value: fc.jsonValue({ maxDepth: 2 }),
  });
  return fc.array(edit, { minLength: 1, maxLength: 4 }).map((edits) => {
    const doc = structuredClone<unknown>(base);
    for (const e of edits) {
      const nodes: Array<{ parent: Record<string, unknown> | unknown[]; key: string | number }> = [];
      const walk = (v: unknown) => {
        if (Array.isArray(v)) {
          v.forEach((x, i) => {
            nodes.push({ parent: v, key: i });
            walk(x);
          });
        } else if (v && typeof v === "object") {
          for (const k of Object.keys(v)) {
            nodes.push({ parent: v as Record<string, unknown>, key: k });
            walk((v as Record<string, unknown>)[k]);
          }
        }
      };
      walk(doc);
      if (nodes.length === 0) break;
      const n = nodes[e.pick % nodes.length]!;
      const set = (x: unknown) => {
        if (Array.isArray(n.parent)) n.parent[n.key as number] = x;
        else n.parent[n.key as string] = x;
      };
      switch (e.how) {
        case "replace":
          set(e.value);
          break;
        case "delete":
          if (Array.isArray(n.parent)) n.parent.splice(n.key as number, 1);
          else Reflect.deleteProperty(n.parent, n.key);
          break;
        case "string":
          set("@nope");
          break;
        case "number":
          set(-1.5);
          break;
        case "array":
          set([]);
          break;
        case "proto":
          if (!Array.isArray(n.parent)) Object.defineProperty(n.parent, "__proto__", { value: { x: 1 }, enumerable: true, configurable: true, writable: true });
          break;
        case "deep": {
          let x: unknown = 1;
          for (let i = 0; i < 80; i++) x = [x];
          set(x);
          break;
        }
      }
    }
    return JSON.stringify(doc);
  });
}

describe("fuzz: nft JSON", () => {
  for (const f of ["all-matches.nft.json", "nat-gateway.nft.json", "iptables-nft.nft.json"]) {
    const base = JSON.parse(corpus(f)) as unknown;
    it(`only RulesetSyntaxError escapes for structural mutations of ${f}`, () => {
      fc.assert(
        fc.property(jsonMutated(base), fc.boolean(), (text, allowUnsupported) => {
          const rs = onlySyntaxErrors(() => parseNftJson(text, { file: "fuzz", allowUnsupported }));
          if (rs) exercise(rs);
        }),
        { numRuns: RUNS },
      );
    });
    it(`only RulesetSyntaxError escapes for text mutations of ${f}`, () => {
      fc.assert(
        fc.property(mutated(corpus(f)), (text) => {
          const rs = onlySyntaxErrors(() => parseNftJson(text, { file: "fuzz", allowUnsupported: true }));
          if (rs) exercise(rs);
        }),
        { numRuns: RUNS },
      );
    });
  }

  it("only RulesetSyntaxError escapes for arbitrary JSON", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 5 }), (v) => {
        onlySyntaxErrors(() => parseNftJson(JSON.stringify({ nftables: Array.isArray(v) ? v : [v] }), { file: "fuzz" }));
        onlySyntaxErrors(() => parseNftJson(JSON.stringify(v), { file: "fuzz" }));
      }),
      { numRuns: RUNS },
    );
  });
});

describe("fuzz: ipset save files and selectors", () => {
  it("only RulesetSyntaxError escapes from parseIpsetSave", () => {
    fc.assert(
      fc.property(mutated(corpus("ipsets.save")), (text) => {
        const sets = onlySyntaxErrors(() => parseIpsetSave(text, "fuzz"));
        if (sets) onlySyntaxErrors(() => parseIptables(corpus("ipset-rules.rules"), { file: "r", ipsets: sets }));
      }),
      { numRuns: RUNS },
    );
  });

  it("only RulesetSyntaxError escapes from parseSelector", () => {
    const words = fc.constantFrom(
      "ip",
      "ip6",
      "tcp",
      "udp",
      "icmp",
      "sport",
      "dport",
      "saddr",
      "daddr",
      "iif",
      "oif",
      "{",
      "}",
      ",",
      "53",
      "1-2",
      "70000",
      "10.0.0.0/8",
      "::/0",
      "eth0",
      "x",
      '"',
    );
    fc.assert(
      fc.property(fc.array(words, { maxLength: 8 }), fc.string({ maxLength: 5 }), (ws, junk) => {
        onlySyntaxErrors(() => parseSelector(ws.join(" ") + junk));
      }),
      { numRuns: RUNS * 2 },
    );
  });
});
