import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Comparison, Difference } from "./compare.js";
import { checkAgainstLedger } from "./ledger.js";

const diff = (aspect: Difference["aspect"], message: string): Difference => ({ aspect, group: undefined, flow: undefined, message });
const cmp = (...differences: Difference[]): Comparison => ({ identical: differences.length === 0, differences, flows: 1 });

describe("known-differences ledger", () => {
  const entry = { reason: "GC timing", matches: [/^events: .*DESTROY/] };

  it("passes an identical comparison without an entry and a listed difference with one", () => {
    assert.deepEqual(checkAgainstLedger("a.pcap", cmp(), undefined), []);
    assert.deepEqual(checkAgainstLedger("a.pcap", cmp(diff("events", "flow x: DESTROY missing")), entry), []);
  });

  it("fails a difference that is not in the ledger", () => {
    const p = checkAgainstLedger("a.pcap", cmp(diff("table", "entry y missing")), undefined);
    assert.equal(p.length, 1);
    assert.match(p[0] ?? "", /not in the ledger/);
  });

  it("fails a difference the file's entry does not explain, beside explained ones", () => {
    const p = checkAgainstLedger("a.pcap", cmp(diff("events", "flow x: DESTROY missing"), diff("stats", "invalid 3 vs 4")), entry);
    assert.equal(p.length, 1);
    assert.match(p[0] ?? "", /does not explain/);
  });

  it("fails an entry that no longer happens, wholly or by one pattern", () => {
    assert.match(checkAgainstLedger("a.pcap", cmp(), entry)[0] ?? "", /now agrees with the kernel/);
    const two = { reason: "r", matches: [/^events:/, /^table:/] };
    assert.match(checkAgainstLedger("a.pcap", cmp(diff("events", "e")), two)[0] ?? "", /no longer matches/);
  });
});
