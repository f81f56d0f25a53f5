import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { stringify } from "yaml";
import { chromium } from "playwright-core";
import { htmlReport, downsample, MAX_POINTS } from "../../src/report/html.js";
import { parseScenario } from "../../src/sim/scenario.js";
import { planRuns, parseVary, runSpec } from "../../src/sim/sweep.js";
import { sweepConclusions } from "../../src/sim/conclusions.js";
import { sparkline } from "../../src/report/terminal.js";

const CHROMIUM = "/usr/bin/chromium";

test("report: downsampling keeps each bucket's maximum and at most MAX_POINTS points", () => {
  const xs = Array.from({ length: 10_000 }, (_, i) => i + 1);
  const ys = xs.map((x) => (x === 4321 ? 1e6 : x % 7));
  const d = downsample(xs, ys);
  assert.equal(d.x.length, MAX_POINTS);
  assert.ok(d.y.includes(1e6));
  assert.equal(d.x[d.x.length - 1], 10_000);
});

test("report: sparklines scale to the maximum", () => {
  assert.equal(sparkline([0, 1, 2, 4], 4), " ▂▄█");
  assert.equal(sparkline([5, 5], 10, 10), "▄▄");
});

test(
  "report: the HTML renders offline in headless Chromium, every chart draws, no console error, no network request",
  { skip: !existsSync(CHROMIUM) && process.env.CI !== "true" ? "no /usr/bin/chromium" : false },
  async () => {
    const s = parseScenario(
      "name: report-test\nduration: 30\ntable: { nf_conntrack_max: 2000 }\ntraffic:\n  - type: clients\n    rate: 30\n  - type: syn-flood\n    rate: 300\n    start: 10\n",
    );
    const runs = planRuns(s, [parseVary("nf_conntrack_max=2000,20000")], [], ".", null).map((sp) => runSpec(sp));
    const html = htmlReport({ title: s.name, scenarioYaml: stringify(s), runs, conclusions: sweepConclusions(runs) });
    const dir = mkdtempSync(join(tmpdir(), "sim-report-"));
    const file = join(dir, "report.html");
    writeFileSync(file, html);
    // A fresh profile directory (playwright passes it as --user-data-dir).
    const browser = await chromium.launchPersistentContext(join(dir, "profile"), {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1300, height: 1000 },
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      const requests: string[] = [];
      page.on("console", (m) => {
        if (m.type() === "error") errors.push(m.text());
      });
      page.on("pageerror", (e) => errors.push(e.message));
      page.on("request", (r) => requests.push(r.url()));
      await page.goto(pathToFileURL(file).href);
      await page.waitForSelector("body[data-rendered]");
      // A string: the test is compiled without the DOM library.
      const charts = await page.evaluate<Array<{ id: string; drawn: boolean }>>(`(() => {
      const out = [];
      document.querySelectorAll("[data-chart]").forEach((el) => {
        const c = el.querySelector("canvas");
        let drawn = false;
        if (c !== null && c.width > 0 && c.height > 0) {
          const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
          for (let i = 3; i < px.length; i += 4) if (px[i] > 0) { drawn = true; break; }
        }
        out.push({ id: el.dataset.chart, drawn });
      });
      return out;
    })()`);
      // Entries by state for both runs, then entries, drops, legit ratio, legit failed, memory.
      assert.equal(charts.length, 7);
      for (const c of charts) assert.ok(c.drawn, `chart ${c.id} drew nothing`);
      assert.deepEqual(errors, []);
      assert.deepEqual(requests, [pathToFileURL(file).href]);
      assert.match((await page.textContent("section")) ?? "", /Conclusions/);
      await page.screenshot({ path: join(process.cwd(), "dist", "report.png"), fullPage: false });
    } finally {
      await browser.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
