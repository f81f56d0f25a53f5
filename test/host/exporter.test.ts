/**
 * The exporter without a kernel: shared refreshes, the scrape budget, top-N
 * with the rest aggregated, the netns label; and its HTTP side: basic auth
 * with bcrypt, TLS, and the one-line errors for a port in use, a bad hash and
 * a missing certificate.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import bcrypt from "bcryptjs";
import { startExporter } from "../../src/cli/exporter.js";
import { CliError } from "../../src/cli/errors.js";
import { ConntrackExporter } from "../../src/host/exporter.js";
import type { NetnsTarget, Snapshot } from "../../src/host/snapshot.js";
import { TableCensus } from "../../src/host/table.js";
import { rig, tcp } from "../conntrack/helpers.js";

/**
 * `count` ESTABLISHED entries as `conntrack -L` lists them, made by ctlab's
 * tracker from real handshakes (the kernel tests hold its listing to the
 * kernel's) and listed 10 s after their last packet: sources 10.0.{0..2}.x,
 * half of them to port 443, the rest to 80..84.
 */
function tableLines(count: number): string[] {
  const { tr, clock } = rig({ sysctls: { nf_conntrack_max: 65536, nf_conntrack_buckets: 65536 } });
  for (let i = 0; i < count; i++) {
    const c = `10.0.${i % 3}.${i % 7}`;
    const sport = 40000 + i;
    const dport = i % 2 === 0 ? 443 : 80 + (i % 5);
    tr.process(tcp({ src: c, dst: "198.51.100.1", sport, dport, flags: "S", seq: 100 }));
    tr.process(tcp({ src: "198.51.100.1", dst: c, sport: dport, dport: sport, flags: "SA", seq: 500, ack: 101 }));
    tr.process(tcp({ src: c, dst: "198.51.100.1", sport, dport, flags: "A", seq: 101, ack: 501 }));
  }
  clock.tick(10_000);
  return tr.formatTable();
}

const TABLES = new Map<number, string[]>();

function fakeSnapshot(target: NetnsTarget, count: number, withTable: boolean, at: number, insert = count): Snapshot {
  let table: TableCensus | undefined;
  if (withTable) {
    table = new TableCensus({ sysctls: {} });
    let lines = TABLES.get(count);
    if (lines === undefined) TABLES.set(count, (lines = tableLines(count)));
    for (const l of lines) table.line(l);
  }
  return {
    meta: { netns: target.label, netnsInode: target.inode, takenAtMs: at },
    conntrackLoaded: true,
    sysctls: { nf_conntrack_max: 1000, nf_conntrack_count: count, nf_conntrack_buckets: 1024 },
    modes: {},
    stats: { found: 1, invalid: 2, insert, insert_failed: 3, drop: 4, early_drop: 5, search_restart: 6, clash_resolve: 7, chaintoolong: 8 },
    count,
    tableFull: [],
    ...(table !== undefined ? { table } : {}),
    problems: [],
    bad: [],
  };
}

function value(text: string, series: string): number | undefined {
  const l = text.split("\n").find((x) => x.startsWith(`${series} `));
  if (l === undefined) return undefined;
  const v = l.slice(series.length + 1);
  return v === "+Inf" ? Infinity : Number(v);
}

describe("exporter", () => {
  it("concurrent scrapes share one counters refresh; the census runs on its own", async () => {
    let counterCalls = 0;
    let censusCalls = 0;
    const ex = new ConntrackExporter({
      targets: [{ label: "", inode: 1 }],
      netnsLabel: false,
      topN: 2,
      take: async (t, withTable) => {
        if (withTable) censusCalls++;
        else counterCalls++;
        await new Promise((r) => setTimeout(r, 30));
        return fakeSnapshot(t, 60, withTable, Date.now());
      },
    });
    const [a, b, c] = await Promise.all([ex.scrape(), ex.scrape(), ex.scrape()]);
    assert.equal(counterCalls, 1);
    assert.equal(censusCalls, 0, "a scrape never runs the census");
    assert.equal(a, b);
    assert.equal(value(c, "node_nf_conntrack_entries"), 60);
    assert.equal(value(a, "node_nf_conntrack_stat_early_drop"), 5);
    assert.equal(value(a, "ctlab_conntrack_stat_clash_resolve"), 7);
    await Promise.all([ex.refreshCensus(), ex.refreshCensus()]);
    assert.equal(censusCalls, 1, "a census asked for while one runs joins it");
    const text = await ex.scrape();
    // Top 2 ports and the rest as "other": 30 on 443, then 80..84 share the other 30.
    assert.equal(value(text, 'ctlab_conntrack_top_dport_entries{dport="tcp/443"}'), 30);
    const top2 = text.split("\n").filter((l) => l.startsWith("ctlab_conntrack_top_dport_entries{"));
    assert.equal(top2.length, 3);
    const sum = top2.reduce((s, l) => s + Number(l.split(" ")[1]), 0);
    assert.equal(sum, 60, "top N + other = every entry");
    assert.equal(value(text, 'ctlab_conntrack_entries_by_state{protocol="tcp",state="ESTABLISHED"}'), 60);
    assert.equal(value(text, "ctlab_conntrack_oldest_idle_established_seconds"), 10);
  });

  it("an insert counter the kernel does not count (fewer inserts than entries) has no sample instead of a misleading 0", async () => {
    let insert = 0;
    const ex = new ConntrackExporter({
      targets: [{ label: "", inode: 1 }],
      netnsLabel: false,
      countersMaxAgeMs: 0,
      take: (t, withTable) => Promise.resolve(fakeSnapshot(t, 60, withTable, Date.now(), insert)),
    });
    const uncounted = await ex.scrape();
    assert.equal(value(uncounted, "node_nf_conntrack_stat_insert"), undefined);
    assert.match(uncounted, /^# TYPE node_nf_conntrack_stat_insert gauge$/m, "the metric is still declared");
    assert.equal(value(uncounted, "node_nf_conntrack_stat_found"), 1, "the counted ones stay");
    assert.equal(value(uncounted, "node_nf_conntrack_entries"), 60);
    insert = 75;
    assert.equal(value(await ex.scrape(), "node_nf_conntrack_stat_insert"), 75, "a kernel that counts it: the value");
  });

  it("a slow refresh never makes a scrape slower than its budget: the last values are served", async () => {
    let n = 0;
    const ex = new ConntrackExporter({
      targets: [{ label: "web1", inode: 2 }],
      netnsLabel: true,
      scrapeBudgetMs: 100,
      countersMaxAgeMs: 0,
      take: async (t, withTable) => {
        n++;
        if (n > 1) await new Promise((r) => setTimeout(r, 1500));
        return fakeSnapshot(t, n * 10, withTable, Date.now());
      },
    });
    const first = await ex.scrape();
    assert.equal(value(first, 'node_nf_conntrack_entries{netns="web1"}'), 10);
    const t0 = Date.now();
    const second = await ex.scrape();
    assert.ok(Date.now() - t0 < 1000, `scrape took ${Date.now() - t0} ms`);
    assert.equal(value(second, 'node_nf_conntrack_entries{netns="web1"}'), 10, "the last values");
    assert.equal(value(second, "ctlab_scrape_budget_exceeded_total"), 1);
    await new Promise((r) => setTimeout(r, 1600));
  });

  it("the fill rate gives a time until full", async () => {
    let now = 1_000_000;
    let count = 100;
    const ex = new ConntrackExporter({
      targets: [{ label: "", inode: 3 }],
      netnsLabel: false,
      countersMaxAgeMs: 0,
      now: () => now,
      take: (t, w) => Promise.resolve(fakeSnapshot(t, count, w, now)),
    });
    assert.equal(value(await ex.scrape(), "ctlab_conntrack_seconds_until_full"), Infinity);
    now += 10_000;
    count = 200; // +10 entries/s, 800 left
    assert.equal(value(await ex.scrape(), "ctlab_conntrack_seconds_until_full"), 80);
  });
});

describe("exporter over HTTP", () => {
  let dir = "";
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "host-web-"));
    execFileSync(
      "openssl",
      ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "1", "-subj", "/CN=127.0.0.1"],
      { stdio: "ignore" },
    );
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("TLS and basic auth from an exporter-toolkit web config", async () => {
    const hash = bcrypt.hashSync("s3cret", 4).replace(/^\$2b\$/, "$2y$");
    writeFileSync(
      join(dir, "web.yml"),
      `# exporter-toolkit format\ntls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\nbasic_auth_users:\n  prom: ${hash}\n`,
    );
    const ex = await startExporter({ listen: "127.0.0.1:0", webConfigFile: join(dir, "web.yml"), tableInterval: 3600 });
    try {
      assert.match(ex.url, /^https:\/\/127\.0\.0\.1:\d+\/metrics$/);
      const get = (auth?: string): Promise<{ status: number; body: string }> =>
        new Promise((resolve, reject) => {
          const req = httpsRequest(
            ex.url,
            { rejectUnauthorized: false, headers: auth ? { Authorization: `Basic ${Buffer.from(auth).toString("base64")}` } : {} },
            (res) => {
              let body = "";
              res.setEncoding("utf8").on("data", (d: string) => (body += d));
              res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
            },
          );
          req.on("error", reject);
          req.end();
        });
      assert.equal((await get()).status, 401);
      assert.equal((await get("prom:wrong")).status, 401);
      assert.equal((await get("nobody:s3cret")).status, 401);
      const ok = await get("prom:s3cret");
      assert.equal(ok.status, 200);
      assert.match(ok.body, /# TYPE node_nf_conntrack_entries gauge/);
    } finally {
      await ex.close();
    }
  });

  it("a port in use, a bad hash and a missing certificate are one-line errors", async () => {
    const first = await startExporter({ listen: "127.0.0.1:0", tableInterval: 3600 });
    try {
      const port = new URL(first.url).port;
      await assert.rejects(
        startExporter({ listen: `127.0.0.1:${port}` }),
        (e: unknown) => e instanceof CliError && e.message === `Cannot listen on "127.0.0.1:${port}": the address is already in use`,
      );
    } finally {
      await first.close();
    }
    writeFileSync(join(dir, "bad-hash.yml"), "basic_auth_users:\n  prom: notahash\n");
    await assert.rejects(
      startExporter({ listen: "127.0.0.1:0", webConfigFile: join(dir, "bad-hash.yml") }),
      (e: unknown) => e instanceof CliError && /^Bad bcrypt hash for user "prom" in ".*bad-hash.yml": /.test(e.message),
    );
    writeFileSync(join(dir, "no-cert.yml"), "tls_server_config:\n  cert_file: missing.pem\n  key_file: key.pem\n");
    await assert.rejects(
      startExporter({ listen: "127.0.0.1:0", webConfigFile: join(dir, "no-cert.yml") }),
      (e: unknown) => e instanceof CliError && /^Cannot read the TLS certificate ".*missing.pem": ENOENT$/.test(e.message),
    );
    await assert.rejects(startExporter({ listen: "nonsense" }), (e: unknown) => e instanceof CliError && e.message.startsWith('Bad --listen "nonsense"'));
  });
});
