/**
 * `ctlab top`: the screen from a census, batch frames without a terminal, and
 * the live view in a real terminal (tmux): it draws, refreshes, and q quits.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, it } from "node:test";
import { renderTop } from "../../src/cli/top.js";
import { diagnose } from "../../src/host/diagnose.js";
import { TableCensus } from "../../src/host/table.js";
import { rig, tcp } from "../conntrack/helpers.js";

const BIN = join(process.cwd(), "dist/src/cli/bin.js");

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

describe("ctlab top", () => {
  it("renders fill, rates, states and top talkers", () => {
    // 30 unanswered SYNs, listed as `conntrack -L` prints them by ctlab's tracker (held to the kernel's listing by the kernel tests).
    const { tr, clock } = rig();
    for (let i = 0; i < 30; i++) tr.process(tcp({ src: `10.9.0.${i}`, dst: "192.0.2.7", sport: 1000 + i, dport: 80, flags: "S", seq: 1 }));
    clock.tick(20_000);
    const table = new TableCensus({ sysctls: {} });
    for (const l of tr.formatTable()) table.line(l);
    const snap = {
      meta: { netns: "web1", takenAtMs: 0 },
      conntrackLoaded: true,
      sysctls: { nf_conntrack_max: 60 },
      modes: {},
      count: 30,
      tableFull: [],
      table,
      problems: [],
      bad: [],
    };
    const r = diagnose(snap);
    const screen = renderTop(r, { seconds: 2, perSecond: { fill: 5, insert: 6, drop: 0 } }, 120, 40);
    assert.match(screen, /^ctlab top — netns web1 — 1970-01-01 00:00:00 UTC/);
    assert.match(screen, /Table {2}\[#+\.+\] 30 \/ 60 \(50\.0 %\)/);
    assert.match(screen, /fill 5\.0\/s {2}insert 6\.0\/s {2}drop 0\.0\/s/);
    assert.match(screen, /full in 6 s at this rate/);
    assert.match(screen, /tcp SYN_SENT\s+30\s+10\.9\.0\.0\s+1\s+tcp\/80\s+30/);
    // 30 entries but insert=0: a kernel that does not count packet-made inserts, shown as n/a rather than a rate of 0.
    const uncounted = diagnose({ ...snap, stats: { insert: 0, drop: 0 } });
    assert.deepEqual(uncounted.stats_not_counted, ["insert"]);
    assert.match(renderTop(uncounted, { seconds: 2, perSecond: { fill: 5, drop: 0 } }, 120, 40), /fill 5\.0\/s {2}insert n\/a {2}drop 0\.0\/s/);
  });

  it("prints plain frames with --batch", () => {
    const out = execFileSync("node", [BIN, "top", "--batch", "-n", "2", "-d", "0.2"], { encoding: "utf8" });
    assert.equal(out.match(/^ctlab top — netns current/gm)?.length, 2);
    assert.ok(!out.includes("\x1b["), "no terminal codes in batch mode");
  });

  const tmux = spawnSync("tmux", ["-V"]).status === 0;
  it("draws in a terminal, refreshes, and q quits", { skip: tmux ? false : "tmux is not installed" }, async () => {
    const session = `host-top-${process.pid}`;
    execFileSync("tmux", ["new-session", "-d", "-s", session, "-x", "120", "-y", "40", `node ${BIN} top -d 0.5; sleep 30`]);
    try {
      let screen = "";
      for (let i = 0; i < 40 && !screen.includes("ctlab top"); i++) {
        await sleep(250);
        screen = execFileSync("tmux", ["capture-pane", "-p", "-t", session], { encoding: "utf8" });
      }
      assert.match(screen, /ctlab top — netns current/);
      assert.match(screen, /Rates {2}fill/);
      execFileSync("tmux", ["send-keys", "-t", session, "q"]);
      let gone = false;
      for (let i = 0; i < 40 && !gone; i++) {
        await sleep(250);
        const cmd = execFileSync("tmux", ["display-message", "-p", "-t", session, "#{pane_current_command}"], { encoding: "utf8" }).trim();
        gone = cmd === "sleep";
      }
      assert.ok(gone, "q ends ctlab top");
      const after = execFileSync("tmux", ["capture-pane", "-p", "-t", session], { encoding: "utf8" });
      assert.ok(!after.includes("Rates  fill"), "the alternate screen is restored");
    } finally {
      spawnSync("tmux", ["kill-session", "-t", session]);
    }
  });
});
