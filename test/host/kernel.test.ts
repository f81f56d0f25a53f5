/**
 * The doctor against real kernel tables: a router namespace filled with
 * traffic of known shape built by ctlab's packet builder — a SYN flood,
 * connections left idle (their FIN/RST never comes), a DNS load and a NAT'd
 * LAN — and the report checked against what was sent and against
 * `conntrack -C`; then collect → doctor --from, and --all-netns.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { diagnose } from "../../src/host/diagnose.js";
import type { DoctorReport } from "../../src/host/diagnose.js";
import { allNetns, liveSource, namedNetns, takeSnapshot } from "../../src/host/snapshot.js";
import { kernelSkipReason, run, sleep } from "../kernel/netns.js";
import { inject, RULESET, SHAPE, shapedFrames, withHostTopology } from "./hostns.js";
import { assertDoctorSchema } from "./schema.js";

const skip = kernelSkipReason();
const BIN = join(process.cwd(), "dist/src/cli/bin.js");

function row(r: DoctorReport, protocol: string, state: string): number {
  return r.by_protocol_state.find((x) => x.protocol === protocol && x.state === state)?.entries ?? 0;
}

describe("host: the doctor on real namespaces", { skip: skip ?? false }, () => {
  it("counts, top talkers, idle ages and findings match the traffic sent; collect → --from gives the same report; --all-netns finds the namespaces", async () => {
    await withHostTopology(RULESET, async (t) => {
      const t0 = Date.now();
      await inject(t, shapedFrames(t.r0Mac));
      await sleep(3000);
      const snap = await takeSnapshot(liveSource(namedNetns(t.rt)), { orphanIdleSeconds: 2 });
      const elapsed = (Date.now() - t0) / 1000;
      const r = diagnose(snap);
      assertDoctorSchema(JSON.parse(JSON.stringify(r)));
      const kernelCount = Number((await run("conntrack", ["-C"], { ns: t.rt })).stdout.trim());
      const total = SHAPE.synFlood + SHAPE.idle + SHAPE.dns + SHAPE.natLan;
      assert.equal(kernelCount, total, "the kernel holds what was sent");
      assert.equal(r.entries, kernelCount);
      assert.equal(r.entries_listed, kernelCount);
      assert.equal(r.limit_writable, false, "nf_conntrack_max is read-only in a child namespace");
      assert.equal(row(r, "tcp", "SYN_SENT"), SHAPE.synFlood + SHAPE.natLan);
      assert.equal(row(r, "tcp", "ESTABLISHED"), SHAPE.idle);
      assert.equal(row(r, "udp", "UNREPLIED"), SHAPE.dns);
      assert.equal(r.assured, SHAPE.idle);
      assert.equal(r.unreplied, SHAPE.synFlood + SHAPE.natLan + SHAPE.dns);
      assert.equal(r.natted, SHAPE.natLan);
      assert.deepEqual(
        r.top.dports.slice(0, 3).map((x) => [x.key, x.entries]),
        [
          ["tcp/80", 320],
          ["udp/53", 150],
          ["tcp/443", 40],
        ],
      );
      assert.deepEqual(r.top.networks[0], { key: "10.66.0.0/24", entries: 250, share: Math.round((250 / total) * 1e6) / 1e6 });
      assert.equal(r.top.destinations[0]?.key, "198.51.100.10");
      // Idle age = the state's timeout − the remaining one: the seconds since the last packet.
      for (const st of r.idle) {
        assert.ok(st.max_seconds <= elapsed + 1.5, `${st.protocol} ${st.state}: idle ${st.max_seconds} s > ${elapsed} s since sending`);
        assert.ok(st.max_seconds >= 1, `${st.protocol} ${st.state}: idle ${st.max_seconds} s, expected about 3 s`);
      }
      assert.equal(r.orphans, SHAPE.idle);
      const ids = r.findings.map((f) => f.id);
      assert.ok(ids.includes("syn-flood"), ids.join());
      assert.ok(ids.includes("orphans"), ids.join());
      assert.ok(ids.includes("notrack-dns"), ids.join());
      assert.ok(!ids.includes("connection-flood"), ids.join());
      const syn = r.findings.find((f) => f.id === "syn-flood");
      assert.ok(syn !== undefined);
      assert.equal(syn.evidence["half_open"], SHAPE.synFlood + SHAPE.natLan);
      assert.equal(syn.evidence["distinct_sources"], SHAPE.synFlood + SHAPE.natLan);
      assert.equal(syn.evidence["top_destination"], "198.51.100.10");
      assert.equal(syn.evidence["top_dport"], "tcp/80");
      // Why it is tracked: the live ruleset's rules, and what a NOTRACK would free.
      assert.equal(r.tracked_by.ruleset, "nft");
      const dns = r.tracked_by.classes.find((c) => c.class === "udp dport 53");
      assert.ok(dns !== undefined);
      assert.equal(dns.notrack_frees, SHAPE.dns);
      assert.ok(dns.tracking_rules.length > 0, "the ct state rule tracks DNS");
      assert.match(dns.notrack_rules ?? "", /notrack/);
      const http = r.tracked_by.classes.find((c) => c.class === "tcp dport 80");
      assert.equal(http?.notrack_frees, SHAPE.synFlood, "NATed entries cannot be untracked");
      assert.ok(r.recommendations.some((x) => x.id === "notrack-dns" && x.memory_bytes !== null && x.memory_bytes < 0));

      // collect writes root-only files; doctor --from reads the same report back.
      const dir = mkdtempSync(join(tmpdir(), "host-collect-"));
      try {
        const snapDir = join(dir, "snap");
        execFileSync("node", [BIN, "collect", snapDir, "--netns", t.rt], { stdio: ["ignore", "ignore", "pipe"] });
        assert.equal(statSync(snapDir).mode & 0o777, 0o700);
        for (const f of readdirSync(snapDir)) assert.equal(statSync(join(snapDir, f)).mode & 0o777, 0o600, f);
        const offline = JSON.parse(execFileSync("node", [BIN, "doctor", "--from", snapDir, "--json"], { encoding: "utf8" })) as DoctorReport;
        assert.equal(offline.entries, kernelCount);
        assert.deepEqual(offline.by_protocol_state, r.by_protocol_state);
        assert.deepEqual(offline.top, r.top);
        // Orphans (and the steady state they pile up to) depend on --orphan-idle, left at its hour here.
        const orphanFree = (x: string): boolean => x !== "orphans" && x !== "forecast-full";
        assert.deepEqual(offline.findings.map((f) => f.id).filter(orphanFree), ids.filter(orphanFree));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }

      const all = allNetns();
      const inodes = new Set(all.map((n) => n.inode));
      assert.equal(inodes.size, all.length, "deduplicated by inode");
      for (const name of [t.rt, t.inj])
        assert.ok(
          all.some((n) => n.label === name),
          `${name} is listed`,
        );
      const cli = JSON.parse(
        execFileSync("node", [BIN, "doctor", "--all-netns", "--json"], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 }),
      ) as DoctorReport[];
      assertDoctorSchema(cli);
      const mine = cli.find((x) => x.netns === t.rt);
      assert.equal(mine?.entries, kernelCount);
    });
  });

  it("a namespace that does not exist is a one-line error", () => {
    try {
      execFileSync("node", [BIN, "doctor", "--netns", "host-does-not-exist"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
      assert.fail("should have failed");
    } catch (e) {
      const err = e as { status: number; stderr: string };
      assert.equal(err.status, 2);
      assert.equal(
        err.stderr,
        'ctlab: Network namespace "host-does-not-exist" does not exist: "/run/netns/host-does-not-exist" is missing (see "ip netns list")\n',
      );
    }
  });
});
