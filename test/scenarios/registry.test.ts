import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { formatIp } from "../../src/packet/addr.js";
import { decodeFrame } from "../../src/packet/decode.js";
import { forEachPacketSync } from "../../src/packet/source.js";
import { PacketView } from "../../src/packet/view.js";
import { buildBatch, buildMerged, buildScenario, findScenario, SCENARIOS, scenarioBlock, scenarioPrefixes, writeCapture } from "./index.js";

function inBlock(addr: string, block: number): boolean {
  if (addr.includes(":")) return addr.startsWith(`fd00:0:0:${block.toString(16)}:`);
  return addr.startsWith(`10.${block}.`);
}

describe("scenario registry", () => {
  it("has unique names and blocks within 1–250", () => {
    const names = new Set(SCENARIOS.map((s) => s.name));
    assert.equal(names.size, SCENARIOS.length);
    for (const s of SCENARIOS) {
      const b = scenarioBlock(s);
      assert.ok(b >= 1 && b <= 250, `Block of "${s.name}" out of range: ${b}`);
      assert.match(s.name, /^[a-z0-9-]+$/);
      assert.ok(s.description.length > 0 && s.expected.length > 0);
    }
  });

  it("finds scenarios by name and reports unknown ones", () => {
    assert.equal(findScenario("tcp-lifecycle").name, "tcp-lifecycle");
    assert.throws(() => findScenario("no-such-scenario"), /Unknown scenario "no-such-scenario"/);
  });

  it("keeps every scenario inside its own address block, so scenarios can be concatenated", () => {
    const v = new PacketView();
    for (const s of SCENARIOS) {
      const frames = buildScenario(s);
      assert.ok(frames.length > 0, `Scenario "${s.name}" is empty`);
      const block = scenarioBlock(s);
      for (const [i, f] of frames.entries()) {
        decodeFrame(v.setFrame(f.frame));
        assert.ok(v.family === 4 || v.family === 6, `Frame ${i + 1} of "${s.name}" is not IP`);
        const src = formatIp(v.family, v.src);
        const dst = formatIp(v.family, v.dst);
        assert.ok(inBlock(src, block) && inBlock(dst, block), `Frame ${i + 1} of "${s.name}" leaves block ${block}: ${src} → ${dst}`);
      }
      const p = scenarioPrefixes(s);
      assert.equal(p.v4, `10.${block}.0.0/16`);
    }
  });

  it("concatenates with growing timestamps and merges by time", () => {
    const list = SCENARIOS.slice(0, 5);
    const { frames, parts } = buildBatch(list);
    assert.equal(parts.length, 5);
    for (let i = 1; i < frames.length; i++) {
      const a = frames[i - 1];
      const b = frames[i];
      assert.ok(a !== undefined && b !== undefined);
      assert.ok(a.tsSec < b.tsSec || (a.tsSec === b.tsSec && a.tsNsec <= b.tsNsec), `Timestamp goes back at frame ${i}`);
    }
    const merged = buildMerged(SCENARIOS.filter((s) => s.kernel?.realtime === true));
    for (let i = 1; i < merged.frames.length; i++) {
      const a = merged.frames[i - 1];
      const b = merged.frames[i];
      assert.ok(a !== undefined && b !== undefined);
      assert.ok(a.tsSec * 1e9 + a.tsNsec <= b.tsSec * 1e9 + b.tsNsec);
    }
  });

  it("writes a capture the packet source reads back", () => {
    const dir = mkdtempSync(join(tmpdir(), "ctlab-scen-"));
    try {
      const frames = buildScenario(findScenario("tcp-lifecycle"));
      const path = join(dir, "s.pcap");
      writeCapture(path, frames);
      let n = 0;
      const sum = forEachPacketSync(path, () => n++);
      assert.equal(sum.error, null);
      assert.equal(sum.records, frames.length);
      assert.equal(n, frames.length);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
