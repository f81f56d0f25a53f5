/**
 * collect → doctor --from on a real table, with nothing written by hand: the
 * traffic is a simulation's capture (src/sim: a SYN flood, clients whose RSTs
 * are lost, a DNS load) replayed into a router namespace beside a NAT'd LAN,
 * and every file of the snapshot is the real tools' output (`conntrack -L -o
 * extended`, `-S`, `-C`, `nft -j list ruleset`, /proc/sys, /proc/slabinfo).
 * The doctor's offline counts must be the simulation's own table; then the
 * same folder, damaged (a bad line, a cut last line, an unreadable file),
 * must still be reported with each failure named.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { appendFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { DoctorReport } from "../../src/host/diagnose.js";
import { CtEntry, parseConntrackStats, parseCtEntry, parseProcNetStat } from "../../src/host/parse.js";
import { TableCensus } from "../../src/host/table.js";
import { runScenario } from "../../src/sim/engine.js";
import { parseScenario } from "../../src/sim/scenario.js";
import { kernelSkipReason, run, setSysctls, withKernelLock } from "../kernel/netns.js";
import { FrameWriter, NO_OPTIONS, TCP_FIN, TCP_SYN } from "../../src/sim/frames.js";
import { PcapSink } from "../../src/sim/sink.js";
import { injectPcap, RULESET, u32, withHostTopology } from "./hostns.js";
import { assertDoctorSchema } from "./schema.js";

const skip = kernelSkipReason();
const BIN = join(process.cwd(), "dist/src/cli/bin.js");

// Short enough that nothing expires in the simulation or in the kernel while the test runs.
const SCENARIO = `name: host-collect
duration: 4
seed: 11
host: { address: 198.51.100.80 }
traffic:
  - type: syn-flood
    rate: 100
    service: tcp/80
    answered: false
  - type: clients
    rate: 10
    arrival: constant
    service: tcp/443
    close: rst
    loss: { rst: 1 }
  - type: dns
    rate: 50
    arrival: constant
`;

const NAT_LAN = 20;

/**
 * A spoofed source the kernel's routing refuses (0/8, 127/8, multicast and
 * class E, ip_route_input's martians): conntrack's entry for it is never
 * confirmed, so the kernel table lacks what the simulation's table holds.
 */
function martian(line: string): boolean {
  const first = Number(/src=(\d+)\./.exec(line)?.[1] ?? "-1");
  return first === 0 || first === 127 || first >= 224;
}

function doctorFrom(dir: string, extra: string[] = []): DoctorReport {
  return JSON.parse(execFileSync("node", [BIN, "doctor", "--from", dir, "--json", "--orphan-idle", "1", ...extra], { encoding: "utf8" })) as DoctorReport;
}

function rows(r: DoctorReport): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of r.by_protocol_state) out[`${x.protocol} ${x.state}`] = x.entries;
  return out;
}

describe("host: collect → doctor --from on a simulated load", { skip: skip ?? false }, () => {
  it("the offline report is the simulation's table; a damaged folder names each failure and reports the rest", async () => {
    const dir = mkdtempSync(join(tmpdir(), "host-collect-"));
    try {
      const s = parseScenario(SCENARIO);
      const pcap = join(dir, "sim.pcap");
      const sim = runScenario(s, {}, { writePcap: pcap });
      // What the simulation's own tracker holds at the end: the kernel must hold the same.
      const want = new TableCensus({ sysctls: {} });
      for (const l of sim.tracker.formatTable({ extended: true })) if (!martian(l)) want.line(l);
      const expected: Record<string, number> = {};
      for (const [k, v] of want.byProtoState) expected[k] = v.entries;
      // The LAN behind the router's SNAT (nft masquerades 10.40.0.0/24): SYNs only.
      expected["tcp SYN_SENT"] = (expected["tcp SYN_SENT"] ?? 0) + NAT_LAN;
      const total = want.total + NAT_LAN;
      assert.ok(
        (expected["tcp SYN_SENT"] ?? 0) >= 400 && (expected["udp REPLIED"] ?? 0) >= 150 && (expected["tcp ESTABLISHED"] ?? 0) >= 30,
        JSON.stringify(expected),
      );

      await withHostTopology(RULESET, async (t) => {
        await injectPcap(t, pcap, sim.summary.packets);
        // The LAN's SYNs and a SYN+FIN (conntrack's tcp_error counts it invalid and makes no entry), by the same frame writer.
        const lan = join(dir, "lan.pcap");
        const w = new FrameWriter();
        const sink = new PcapSink(lan);
        for (let i = 0; i < NAT_LAN; i++)
          sink.frame(i, w.buf, w.tcp(u32(`10.40.0.${i + 1}`), u32("203.0.113.5"), 50000 + i, 80, 7, 0, TCP_SYN, 65535, NO_OPTIONS, 0));
        sink.frame(NAT_LAN, w.buf, w.tcp(u32("10.50.0.1"), u32("198.51.100.80"), 1234, 80, 1, 0, TCP_SYN | TCP_FIN, 65535, NO_OPTIONS, 0));
        sink.close();
        await injectPcap(t, lan, sink.frames);
        // Entries of the last packets age a little: the orphans (idle ≥ 1 s) are then every ESTABLISHED one.
        await new Promise((r) => setTimeout(r, 1500));
        const snap = join(dir, "snap");
        execFileSync("node", [BIN, "collect", snap, "--netns", t.rt], { stdio: ["ignore", "ignore", "pipe"] });
        const kernelCount = Number((await run("conntrack", ["-C"], { ns: t.rt })).stdout.trim());
        const liveStats = parseConntrackStats((await run("conntrack", ["-S"], { ns: t.rt })).stdout).total;
        const procStat = parseProcNetStat((await run("cat", ["/proc/net/stat/nf_conntrack"], { ns: t.rt })).stdout).total;

        // Root-only files, every one the output of a real tool or /proc.
        assert.equal(statSync(snap).mode & 0o777, 0o700);
        const files = readdirSync(snap).sort();
        for (const f of files) assert.equal(statSync(join(snap, f)).mode & 0o777, 0o600, f);
        for (const f of ["conntrack-L.txt", "conntrack-S.txt", "conntrack-C.txt", "nft-ruleset.json", "sysctl.txt", "slabinfo.txt", "meta.json"])
          assert.ok(files.includes(f), `${f} in ${files.join()}`);

        const r = doctorFrom(snap);
        assertDoctorSchema(r);
        assert.equal(r.netns, t.rt);
        assert.equal(r.entries, kernelCount);
        assert.equal(r.entries_listed, kernelCount);
        assert.deepEqual(rows(r), expected, "the kernel holds what the simulation and the LAN sent");
        assert.equal(kernelCount, total);
        assert.equal(r.natted, NAT_LAN);
        assert.equal(r.assured, expected["tcp ESTABLISHED"]);
        assert.equal(r.orphans, expected["tcp ESTABLISHED"]);
        // The counters read from the file are the kernel's, and agree with /proc/net/stat where both count.
        const wantStats: Record<string, number> = { ...liveStats, ...(procStat["ignore"] !== undefined ? { ignore: procStat["ignore"] } : {}) };
        assert.deepEqual(r.stats, wantStats);
        assert.equal(wantStats["invalid"], 1, "the SYN+FIN");
        // A kernel that counts inserts in the packet path has insert ≥ the entries; this one (6.x) counts conntrack -I only.
        const inserted = liveStats["insert"] ?? 0;
        assert.deepEqual(r.stats_not_counted, inserted < kernelCount ? ["insert"] : []);
        if (inserted < kernelCount) assert.match(execFileSync("node", [BIN, "doctor", "--from", snap], { encoding: "utf8" }), / insert=n\/a /);
        assert.equal(procStat["invalid"], 1);
        assert.equal(r.limit, Number(readFileSync("/proc/sys/net/netfilter/nf_conntrack_max", "utf8")));
        assert.equal(r.tracked_by.ruleset, "nft");
        const ids = r.findings.map((f) => f.id);
        for (const id of ["syn-flood", "orphans", "notrack-dns"]) assert.ok(ids.includes(id), ids.join());
        const syn = r.findings.find((f) => f.id === "syn-flood");
        assert.equal(syn?.evidence["half_open"], expected["tcp SYN_SENT"]);
        assert.equal(syn?.evidence["top_dport"], "tcp/80");
        assert.equal(r.tracked_by.classes.find((c) => c.class === "udp dport 53")?.notrack_frees, expected["udp REPLIED"]);
        // The steady state: the flood's SYNs are held their 120 s timeout.
        const st = r.steady_state?.by_state.find((x) => x.protocol === "tcp" && x.state === "SYN_SENT");
        assert.ok(st !== undefined);
        assert.equal(st.kind, "timeout");
        assert.equal(st.hold_seconds, 120);

        // The same folder, damaged.
        const bad = join(dir, "bad");
        cpSync(snap, bad, { recursive: true });
        const lines = readFileSync(join(bad, "conntrack-L.txt"), "utf8")
          .split("\n")
          .filter((l) => l !== "");
        const cut = lines[lines.length - 1] as string;
        writeFileSync(
          join(bad, "conntrack-L.txt"),
          [...lines.slice(0, 4), "ipv4     2 tcp      6 BAD", ...lines.slice(4, -1), cut.slice(0, cut.indexOf(" dport=") + 3)].join("\n"),
        );
        appendFileSync(join(bad, "sysctl.txt"), "this is not a sysctl\n");
        rmSync(join(bad, "conntrack-S.txt"));
        mkdirSync(join(bad, "conntrack-S.txt"));
        const d = doctorFrom(bad);
        assertDoctorSchema(d);
        const sysLines = readFileSync(join(bad, "sysctl.txt"), "utf8").split("\n").length - 1;
        assert.deepEqual(
          d.bad_lines.map((b) => `${b.source}:${b.line}`),
          [`sysctl.txt:${sysLines}`, "conntrack-L.txt:5", `conntrack-L.txt:${lines.length + 1}`],
        );
        assert.ok(
          d.problems.some((p) => p.source === "conntrack-S.txt" && /could not be read: EISDIR/.test(p.message)),
          JSON.stringify(d.problems),
        );
        assert.equal(d.entries_listed, total - 1, "every line but the cut one is read");
        assert.equal(d.entries, kernelCount, "conntrack -C is still read");
        // Without conntrack -S only /proc/net/stat's `ignore` (which -S no longer prints) is left.
        assert.deepEqual(d.stats, procStat["ignore"] !== undefined ? { ignore: procStat["ignore"] } : null);
        assert.ok(d.findings.some((f) => f.id === "syn-flood"));
        const text = spawnSync("node", [BIN, "doctor", "--from", bad], { encoding: "utf8" });
        assert.equal(text.status, 0);
        assert.match(text.stdout, /Not read \(the rest is still reported\)/);
        assert.match(text.stdout, /conntrack-L\.txt line 5: /);
        assert.match(text.stdout, /conntrack-S\.txt: ".*conntrack-S\.txt" could not be read: EISDIR/);
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("host: the parsers on the real tools' other forms", { skip: skip ?? false }, () => {
  it("IPv6, zones, accounting and timestamps from conntrack -L -o extended, and the short form", async () => {
    await withKernelLock(async () => {
      const ns = `host-${process.pid}-tools`;
      try {
        await run("ip", ["netns", "add", ns]);
        await setSysctls(ns, { "net.netfilter.nf_conntrack_acct": 1, "net.netfilter.nf_conntrack_timestamp": 1 });
        const ct = (args: string[]) => run("conntrack", args, { ns });
        await ct([
          "-I",
          "-s",
          "2001:db8::1",
          "-d",
          "2001:db8::2",
          "-p",
          "tcp",
          "--sport",
          "1",
          "--dport",
          "443",
          "--state",
          "SYN_SENT",
          "-t",
          "98",
          "--zone",
          "3",
        ]);
        await ct(["-I", "-s", "10.1.0.1", "-d", "10.2.0.53", "-p", "udp", "--sport", "1000", "--dport", "53", "-t", "19"]);
        await new Promise((r) => setTimeout(r, 1100));
        const ext = (await ct(["-L", "-o", "extended", "-f", "ipv6"])).stdout.trim();
        const e = new CtEntry();
        assert.equal(parseCtEntry(ext, e), undefined, ext);
        assert.deepEqual([e.family, e.proto, e.state, e.unreplied, e.sport, e.dport, e.zone], [6, "tcp", "SYN_SENT", true, 1, 443, 3], ext);
        assert.ok(e.timeout > 90 && e.timeout <= 98, ext);
        assert.deepEqual([e.packetsOrig, e.bytesOrig], [0, 0], "accounting on: counters printed");
        assert.ok(e.deltaTime >= 1, `timestamp on: delta-time printed: ${ext}`);
        const t = new TableCensus({ sysctls: {} });
        t.line(ext);
        assert.deepEqual(t.results(5).all.source_networks.top, [{ key: "2001:db8::/64", entries: 1, share: 1 }]);
        assert.deepEqual([t.withTimestamp, t.withAcct], [1, 1]);
        const short = (await ct(["-L", "-f", "ipv4"])).stdout.trim();
        assert.equal(parseCtEntry(short, e), undefined, short);
        assert.deepEqual([e.family, e.proto, e.state, e.unreplied, e.dport, e.src], [4, "udp", "", true, 53, "10.1.0.1"], short);
        // Entries made over ctnetlink are what `insert` counts (nf_conntrack_hash_check_insert): the two -I's.
        assert.equal(parseConntrackStats((await ct(["-S"])).stdout).total["insert"], 2);
      } finally {
        await run("ip", ["netns", "del", ns], { allowFail: true });
      }
    });
  });
});
