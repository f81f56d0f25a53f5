/**
 * Every real ruleset of test/firewall/corpus/ (SOURCES.md) loads into ctlab
 * without --allow-unsupported: no rule is skipped, no feature refused. The
 * nft text ones go through the real nft (root); the kernel comparisons are
 * in test/kernel/firewall.test.ts.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { parseIpsetSave } from "../../src/firewall/ipset.js";
import { loadRuleset } from "../../src/firewall/load.js";
import { convertNftText } from "../../src/host/nft-text.js";
import { kernelSkipReason } from "../kernel/netns.js";

const DIR = fileURLToPath(new URL("../../../test/firewall/corpus/", import.meta.url));
const files = readdirSync(DIR).filter((f) => /\.(nft|rules|json)$/.test(f));
const sources = readFileSync(DIR + "SOURCES.md", "utf8");

describe("real-world rulesets corpus", () => {
  it("lists every file in SOURCES.md with its origin", () => {
    assert.ok(files.length >= 5, files.join(", "));
    for (const f of readdirSync(DIR).filter((x) => x !== "SOURCES.md")) assert.ok(sources.includes(`\`${f}\``), `${f} is not in SOURCES.md`);
  });

  for (const f of files) {
    const nftText = f.endsWith(".nft");
    it(`${f} loads with every rule`, { skip: nftText ? (kernelSkipReason() ?? false) : false }, () => {
      let text = readFileSync(DIR + f, "utf8");
      // nft 1.0.6 knows "dstnat" only for prerouting (SOURCES.md).
      if (f === "docker-nftables.nft") text = text.replace("hook output priority dstnat", "hook output priority -100");
      const ipsetFile = DIR + f.replace(/\.rules$/, ".ipsets");
      const ipsets = f.endsWith(".rules") ? tryRead(ipsetFile) : null;
      const rs = loadRuleset(text, {
        file: f,
        nftText: (t, file) => convertNftText(t, { file }),
        ...(ipsets !== null ? { ipsets: parseIpsetSave(ipsets) } : {}),
      });
      const rules = rs.tables.reduce((n, t) => n + t.chains.reduce((m, c) => m + c.rules.length, 0), 0);
      assert.ok(rules > 5, `${f}: ${rules} rules`);
    });
  }
});

function tryRead(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}
