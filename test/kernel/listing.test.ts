/**
 * `iptables -L -v -n -x` as the real binary prints it: each ruleset under
 * test/firewall/rulesets/listing/ (every supported match and target, with
 * negations, defaults and aliases) is loaded with iptables-nft-restore into a
 * scratch network namespace and listed, table by table, against ctlab's
 * listing of the same file. No traffic: the counters are zero on both sides.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { formatIptablesListing } from "../../src/firewall/counters.js";
import { parseIptables } from "../../src/firewall/iptables.js";
import { NS_PREFIX, kernelSkipReason, run } from "./netns.js";

const DIR = fileURLToPath(new URL("../../../test/firewall/rulesets/listing/", import.meta.url));
const NS = `${NS_PREFIX}${process.pid}-listing`;
const skip = kernelSkipReason();

/** ctlab's listing of one table, without its "# table" heading and the trailing blank line. */
function ours(text: string, file: string, table: string, v6: boolean): string {
  const rs = parseIptables(text, { file, family: v6 ? "ip6" : "ip" });
  return formatIptablesListing(rs, table)
    .split("\n")
    .filter((l) => !l.startsWith("# table"))
    .join("\n")
    .trimEnd();
}

describe("kernel: iptables -L -v -n -x output", { skip: skip ?? false }, () => {
  before(async () => {
    await run("ip", ["netns", "add", NS]);
  });
  after(async () => {
    await run("ip", ["netns", "del", NS], { allowFail: true });
  });

  for (const file of readdirSync(DIR).filter((f) => f.endsWith(".rules"))) {
    it(`lists ${file} byte for byte as iptables-nft does`, async () => {
      const text = readFileSync(DIR + file, "utf8");
      const v6 = file.startsWith("v6");
      const tool = v6 ? "ip6tables-nft" : "iptables-nft";
      await run(`${tool}-restore`, [DIR + file], { ns: NS });
      const tables = [...text.matchAll(/^\*(\S+)/gm)].map((m) => m[1]!);
      for (const table of tables) {
        const real = (await run(tool, ["-t", table, "-L", "-v", "-n", "-x"], { ns: NS })).stdout;
        const want = real
          .split("\n")
          .filter((l) => !l.startsWith("# Warning:"))
          .join("\n")
          .trimEnd();
        assert.equal(ours(text, file, table, v6), want, `${file} table ${table}`);
      }
    });
  }
});
