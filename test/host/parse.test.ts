/**
 * The host parsers on output made by tools (ctlab's own `conntrack -L`
 * formatter on a corpus capture, whose lines the kernel tests hold to the real
 * conntrack-tools), their error reporting, and fuzzing: only a reason string
 * or a BadLine ever comes back, never an exception.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import {
  CtEntry,
  parseConntrackStats,
  uncountedStats,
  parseCount,
  parseCtEntry,
  parseMemTotal,
  parseModes,
  parseProcNetStat,
  parseSlabinfo,
  parseSysctls,
  parseTableFull,
} from "../../src/host/parse.js";
import { TableCensus } from "../../src/host/table.js";
import { parseWebConfigText, WebConfigError } from "../../src/host/webconfig.js";

const BIN = join(process.cwd(), "dist/src/cli/bin.js");

describe("host parsers", () => {
  let dir = "";
  let table: string[] = [];
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "host-parse-"));
    // A real capture through ctlab's engine, listed as conntrack -L -o extended lists it.
    execFileSync("node", [BIN, "replay", "../shared/corpus/pcaps/nDPI/gnutella.pcap", "--table", join(dir, "t.txt"), "-q", "--clock", "frozen"], {
      stdio: "ignore",
    });
    table = readFileSync(join(dir, "t.txt"), "utf8")
      .split("\n")
      .filter((l) => l !== "");
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("reads every line of a conntrack -L -o extended table", () => {
    const c = new TableCensus({ sysctls: {} });
    for (const l of table) c.line(l);
    assert.ok(table.length > 500, `${table.length} lines`);
    assert.equal(c.badCount, 0);
    assert.equal(c.total, table.length);
    const e = new CtEntry();
    const tcpLine = table.find((l) => l.includes(" tcp ")) as string;
    assert.equal(parseCtEntry(tcpLine, e), undefined);
    assert.equal(e.proto, "tcp");
    assert.equal(e.family, 4);
    assert.ok(e.sport > 0 && e.dport > 0);
  });

  it("names bad lines with their line number and keeps the rest", () => {
    const c = new TableCensus({ sysctls: {}, source: "conntrack-L.txt" });
    const lines = [table[0] as string, "garbage", (table[1] as string).slice(0, 40), table[2] as string];
    for (const l of lines) c.line(l);
    assert.equal(c.total, 2);
    assert.equal(c.badCount, 2);
    assert.deepEqual(
      c.bad.map((b) => [b.line, b.source]),
      [
        [2, "conntrack-L.txt"],
        [3, "conntrack-L.txt"],
      ],
    );
    assert.match(c.bad[1]?.reason ?? "", /two tuples/);
  });

  it("a folder that is not a snapshot is a one-line error", () => {
    try {
      execFileSync("node", [BIN, "doctor", "--from", join(dir, "nothing")], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
      assert.fail("should fail");
    } catch (e) {
      const err = e as { status: number; stderr: string };
      assert.equal(err.status, 2);
      assert.match(err.stderr, /^ctlab: Cannot read the snapshot folder ".*nothing": ENOENT\n$/);
    }
  });

  // The texts below are verbatim output of the real tools on the CI machine
  // (conntrack-tools 1.4.7, Linux 6.18, 2 CPUs, 2026-12-02), kept small; the
  // same parsers read freshly made output with non-zero counters, IPv6,
  // zones, accounting and timestamps in test/host/collect.test.ts.
  it("reads conntrack -S per CPU and /proc/net/stat/nf_conntrack's hex rows", () => {
    const s = parseConntrackStats(
      "cpu=0   \tfound=0 invalid=0 insert=0 insert_failed=0 drop=0 early_drop=0 error=0 search_restart=0 clash_resolve=0 chaintoolong=0 \n" +
        "cpu=1   \tfound=0 invalid=0 insert=0 insert_failed=0 drop=0 early_drop=0 error=0 search_restart=0 clash_resolve=0 chaintoolong=0 \n",
    );
    assert.equal(s.cpus, 2);
    assert.deepEqual(Object.keys(s.total), [
      "found",
      "invalid",
      "insert",
      "insert_failed",
      "drop",
      "early_drop",
      "error",
      "search_restart",
      "clash_resolve",
      "chaintoolong",
    ]);
    assert.equal(s.bad.length, 0);
    const p = parseProcNetStat(
      "entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart\n" +
        "00000050  00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000  00000000 00000000 00000000 00000000\n" +
        "00000050  00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000  00000000 00000000 00000000 00000000\n",
    );
    // `entries` is the table's count, repeated on every CPU's row: not summed.
    assert.deepEqual([p.total["entries"], p.total["ignore"], p.cpus], [0x50, 0, 2]);
    assert.equal(parseConntrackStats("cpu=0 found=x\nnope\n").bad.length, 2);
  });

  it("insert is not counted when fewer entries were inserted than the table holds (kernels that count conntrack -I only)", () => {
    assert.deepEqual(uncountedStats({ insert: 0, drop: 0 }, 510), ["insert"]);
    assert.deepEqual(uncountedStats({ insert: 3, drop: 0 }, 510), ["insert"], "three conntrack -I on a packet-made table");
    assert.deepEqual(uncountedStats({ insert: 510 }, 510), []);
    assert.deepEqual(uncountedStats({ insert: 0 }, 0), [], "an empty table says nothing");
    assert.deepEqual(uncountedStats({ drop: 0 }, 510), [], "no insert counter at all");
    assert.deepEqual(uncountedStats(null, 510), []);
    assert.deepEqual(uncountedStats({ insert: 0 }, undefined), []);
  });

  it("reads sysctls, slabinfo, meminfo, modes, counts and kernel log lines", () => {
    assert.deepEqual(
      parseSysctls(
        // `grep -r -s . /proc/sys/net/netfilter/` (collect) and `sysctl` (the README's shell form).
        "/proc/sys/net/netfilter/nf_conntrack_acct:0\n/proc/sys/net/netfilter/nf_conntrack_buckets:262144\n/proc/sys/net/netfilter/nf_log/10:nf_log_ipv6\n" +
          "net.netfilter.nf_conntrack_max = 262144\nnet.netfilter.nf_log.10 = nf_log_ipv6\n",
      ).values,
      { nf_conntrack_acct: 0, nf_conntrack_buckets: 262144, nf_conntrack_max: 262144 },
    );
    assert.deepEqual(parseSlabinfo("nf_conntrack          80    144    256   16    1 : tunables    0    0    0 : slabdata      9      9      0\n").slab, {
      activeObjs: 80,
      numObjs: 144,
      objSize: 256,
      objPerSlab: 16,
      pagesPerSlab: 1,
    });
    assert.equal(parseMemTotal("MemTotal:       24683548 kB\n"), 24683548 * 1024);
    // stat -c "%a %n": 644 in the initial namespace, 444 in a child one.
    assert.deepEqual(parseModes("444 /proc/sys/net/netfilter/nf_conntrack_max\n444 /proc/sys/net/netfilter/nf_conntrack_buckets\n"), {
      nf_conntrack_max: 0o444,
      nf_conntrack_buckets: 0o444,
    });
    assert.equal(parseCount("660\n", "c").value, 660);
    assert.equal(parseCount("x\n", "c").bad[0]?.line, 1);
    // dmesg --time-format=iso and plain dmesg, the lines of a table-full run of test/kernel/tablefull.test.ts;
    // the third is the form of kernels before the netns was named (net_warn_ratelimited in nf_conntrack_core.c, kernel source).
    const log = parseTableFull(
      "2026-12-02T12:22:48,330977+00:00 nf_conntrack: nf_conntrack: table full in netns 4026532246, dropping packet\n" +
        "[  246.331005] nf_conntrack: nf_conntrack: table full in netns 4026532246, dropping packet\n" +
        "[  246.331102] nf_conntrack: table full, dropping packet\nsomething else\n",
    );
    assert.deepEqual(log, [
      { time: "2026-12-02T12:22:48,330977+00:00", netnsInode: 4026532246 },
      { time: "246.331005 s after boot", netnsInode: 4026532246 },
      { time: "246.331102 s after boot" },
    ]);
  });

  it("fuzz: no parser throws on arbitrary or mutated input", () => {
    const e = new CtEntry();
    const sample = table.slice(0, 50);
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), fc.nat(49), fc.nat(400), fc.string({ maxLength: 20 }), (junk, pick, cut, insert) => {
        const base = sample[pick % sample.length] as string;
        const mutated = base.slice(0, cut) + insert + base.slice(cut + insert.length);
        for (const l of [junk, mutated]) {
          const why = parseCtEntry(l, e);
          assert.ok(why === undefined || typeof why === "string");
        }
        const c = new TableCensus({ sysctls: {} });
        c.line(mutated);
        c.line(junk);
        assert.equal(c.total + c.badCount + (mutated.trim() === "" ? 1 : 0) + (junk.trim() === "" || junk.startsWith("conntrack v") ? 1 : 0) >= 1, true);
        parseConntrackStats(junk);
        parseProcNetStat(junk);
        parseSysctls(junk);
        parseSlabinfo(`nf_conntrack ${junk}`);
        parseTableFull(junk);
        parseCount(junk, "x");
        try {
          parseWebConfigText(junk, "w.yml");
        } catch (err) {
          assert.ok(err instanceof WebConfigError);
        }
      }),
      { numRuns: 1500 },
    );
  });
});
