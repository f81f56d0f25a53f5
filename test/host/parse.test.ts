/**
 * The host parsers on output made by tools (ctlab's own `conntrack -L`
 * formatter on a corpus capture, whose lines the kernel tests hold to the real
 * conntrack-tools), their error reporting, and fuzzing: only a reason string
 * or a BadLine ever comes back, never an exception.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import {
  CtEntry,
  parseConntrackStats,
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
import { assertDoctorSchema } from "./schema.js";

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

  it("reads the short form, accounting, timestamps, zones and IPv6", () => {
    const e = new CtEntry();
    // The shapes conntrack-tools 1.4.7 prints (see test/host/kernel-tools.test.ts for the real tool's output).
    const line =
      "ipv6     10 tcp      6 98 SYN_SENT src=2001:db8::1 dst=2001:db8::2 sport=1 dport=443 packets=1 bytes=80 [UNREPLIED] src=2001:db8::2 dst=2001:db8::1 sport=443 dport=1 packets=0 bytes=0 mark=0 zone=3 delta-time=12 [start=Wed Dec  2 12:43:07 2026] use=1 id=5";
    assert.equal(parseCtEntry(line, e), undefined);
    assert.deepEqual([e.family, e.state, e.unreplied, e.packetsOrig, e.bytesOrig, e.zone, e.deltaTime], [6, "SYN_SENT", true, 1, 80, 3, 12]);
    const t = new TableCensus({ sysctls: {} });
    t.line(line);
    assert.deepEqual([t.withTimestamp, t.oldestAge, t.withAcct, t.packets, t.bytes], [1, 12, 1, 1, 80]);
    const c = new TableCensus({ sysctls: {} });
    c.line(line);
    assert.deepEqual(c.results(5).all.source_networks.top, [{ key: "2001:db8::/64", entries: 1, share: 1 }]);
    assert.equal(
      parseCtEntry("udp      17 19 src=10.1.0.1 dst=10.2.0.53 sport=1000 dport=53 [UNREPLIED] src=10.2.0.53 dst=10.1.0.1 sport=53 dport=1000 mark=0 use=1", e),
      undefined,
    );
    assert.deepEqual([e.proto, e.state, e.timeout, e.dport], ["udp", "", 19, 53]);
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

  it("doctor --from reads a truncated snapshot: the bad line is named, the rest reported", () => {
    const snap = join(dir, "snap");
    execFileSync("mkdir", ["-p", snap]);
    writeFileSync(join(snap, "meta.json"), JSON.stringify({ netns: "demo", takenAtMs: 1_764_000_000_000 }));
    writeFileSync(
      join(snap, "conntrack-L.txt"),
      [...table.slice(0, 10), "ipv4 2 tcp 6 BAD", ...table.slice(10, 20), (table[20] as string).slice(0, 50)].join("\n"),
    );
    writeFileSync(
      join(snap, "sysctl.txt"),
      "/proc/sys/net/netfilter/nf_conntrack_max:4096\n/proc/sys/net/netfilter/nf_conntrack_buckets:4096\nthis is not a sysctl\n",
    );
    const r = JSON.parse(execFileSync("node", [BIN, "doctor", "--from", snap, "--json"], { encoding: "utf8" })) as {
      entries_listed: number;
      bad_lines: Array<{ source: string; line: number }>;
      problems: Array<{ source: string }>;
    };
    assertDoctorSchema(r);
    const { entries_listed: _dropped, ...without } = r;
    assert.throws(() => assertDoctorSchema(without), /entries_listed/, "the schema requires the documented fields");
    assert.equal(r.entries_listed, 20);
    assert.deepEqual(
      r.bad_lines.map((b) => `${b.source}:${b.line}`),
      ["sysctl.txt:3", "conntrack-L.txt:11", "conntrack-L.txt:22"],
    );
    assert.ok(
      r.problems.some((p) => p.source === "conntrack-S.txt"),
      "missing files are named",
    );
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

  it("sums conntrack -S per CPU and reads /proc/net/stat hex", () => {
    const s = parseConntrackStats(
      "cpu=0   \tfound=1 invalid=2 insert=0 insert_failed=3 drop=4 early_drop=5 error=0 search_restart=6 clash_resolve=7 chaintoolong=0 \ncpu=1   \tfound=10 invalid=0 insert=3 insert_failed=0 drop=0 early_drop=0 error=0 search_restart=0 clash_resolve=0 chaintoolong=1 \n",
    );
    assert.equal(s.cpus, 2);
    assert.deepEqual([s.total["found"], s.total["insert"], s.total["drop"], s.total["chaintoolong"]], [11, 3, 4, 1]);
    const p = parseProcNetStat("entries  clashres found new\n00000003  00000001 0000000a 00000000\n00000003  00000002 00000001 00000000\n");
    assert.deepEqual([p.total["entries"], p.total["clashres"], p.total["found"]], [3, 3, 11]);
    assert.equal(parseConntrackStats("cpu=0 found=x\nnope\n").bad.length, 2);
  });

  it("reads sysctls, slabinfo, meminfo, modes, counts and kernel log lines", () => {
    assert.deepEqual(
      parseSysctls(
        "/proc/sys/net/netfilter/nf_conntrack_max:262144\n/proc/sys/net/netfilter/nf_log/2:NONE\nnet.netfilter.nf_conntrack_buckets = 1024\nnet.netfilter.nf_log.10 = NONE\n",
      ).values,
      { nf_conntrack_max: 262144, nf_conntrack_buckets: 1024 },
    );
    assert.deepEqual(parseSlabinfo("nf_conntrack         224    288    256   16    1 : tunables    0    0    0 : slabdata     18     18      0\n").slab, {
      activeObjs: 224,
      numObjs: 288,
      objSize: 256,
      objPerSlab: 16,
      pagesPerSlab: 1,
    });
    assert.equal(parseMemTotal("MemTotal:       24683548 kB\n"), 24683548 * 1024);
    assert.deepEqual(parseModes("444 /proc/sys/net/netfilter/nf_conntrack_max\n"), { nf_conntrack_max: 0o444 });
    assert.equal(parseCount("3\n", "c").value, 3);
    assert.equal(parseCount("x\n", "c").bad[0]?.line, 1);
    const log = parseTableFull(
      "2026-12-02T12:22:48,330977+00:00 nf_conntrack: nf_conntrack: table full in netns 4026532246, dropping packet\n[  246.331102] nf_conntrack: table full, dropping packet\nsomething else\n",
    );
    assert.deepEqual(log, [{ time: "2026-12-02T12:22:48,330977+00:00", netnsInode: 4026532246 }, { time: "246.331102 s after boot" }]);
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
