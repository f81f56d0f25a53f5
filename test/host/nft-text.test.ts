import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { RulesetSyntaxError } from "../../src/firewall/errors.js";
import { loadRuleset } from "../../src/firewall/load.js";
import type { Rule, Ruleset } from "../../src/firewall/model.js";
import { parseNftJson } from "../../src/firewall/nft.js";
import { EnvironmentError } from "../../src/host/environment.js";
import { convertNftText } from "../../src/host/nft-text.js";
import { CORPUS, corpus } from "../firewall/helpers.js";

function rules(rs: Ruleset): Rule[] {
  return rs.tables.flatMap((t) => t.chains.flatMap((c) => c.rules));
}

const root = typeof process.getuid === "function" && process.getuid() === 0;
const haveNft = spawnSync("nft", ["--version"]).status === 0;
const nftText = (text: string, file: string): string => convertNftText(text, { file });

describe("convertNftText()", () => {
  it("asks for JSON when nft is missing, as an environment error (not a ruleset error)", () => {
    assert.throws(
      () => convertNftText("table inet t {}\n", { file: "r.nft", nft: "/nonexistent/nft" }),
      (e: unknown) => {
        assert.ok(e instanceof EnvironmentError);
        assert.ok(!(e instanceof RulesetSyntaxError));
        assert.equal(e.need, "tool");
        assert.equal(
          e.message,
          'Cannot read nft text "r.nft" without the "nft" tool ("/nonexistent/nft" did not run): pass the output of "nft -j list ruleset" instead',
        );
        return true;
      },
    );
  });

  it("loadRuleset refuses nft text without a converter, naming the way out", () => {
    assert.throws(() => loadRuleset("table inet t {\n}\n", { file: "t.nft" }), {
      message: 't.nft:1:1: nft text needs a converter to JSON (convertNftText runs the real nft): pass the output of "nft -j list ruleset" instead',
    });
  });

  it("loads nft text in a scratch namespace and lists it as JSON", { skip: !(root && haveNft) && "needs root and nft" }, () => {
    const file = `${CORPUS}src/nat-gateway.nft`;
    const rs = loadRuleset(corpus("src/nat-gateway.nft"), { file, nftText });
    const fromJson = parseNftJson(corpus("nat-gateway.nft.json"), { file: "j" });
    assert.deepEqual(
      rules(rs).map((r) => r.text),
      rules(fromJson).map((r) => r.text),
    );
    const leftover = spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout;
    assert.ok(!leftover.includes(`ctlab-nftconv-${process.pid}-`), "scratch namespace was deleted");
  });

  it("maps nft's error to the line and column of the text", { skip: !(root && haveNft) && "needs root and nft" }, () => {
    const text = "table inet t {\n\tchain c {\n\t\ttcp dport 22 acept\n\t}\n}\n";
    assert.throws(
      () => convertNftText(text, { file: "bad.nft" }),
      (e: unknown) => {
        assert.ok(e instanceof RulesetSyntaxError);
        assert.equal(e.line, 3);
        assert.equal(e.column, 21);
        assert.equal(e.message, "bad.nft:3:21: nft rejected the ruleset: syntax error, unexpected newline");
        return true;
      },
    );
  });
});
