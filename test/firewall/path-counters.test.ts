/**
 * Counters written back: `iptables-save -c` text that real iptables-restore
 * -c / iptables-save -c reproduce, nft JSON that nft loads with the same
 * counter values, and the `iptables -L -v -n -x` listing. The round trips
 * through the real tools run in a scratch network namespace when root and
 * the tools are there, and are skipped (with the reason) otherwise.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { formatIptablesListing, iptablesSaveWithCounters, nftJsonWithCounters, resetCounters, compareCounters } from "../../src/firewall/counters.js";
import { parseIptables } from "../../src/firewall/iptables.js";
import { parseNftJson } from "../../src/firewall/nft.js";
import { corpus } from "./helpers.js";
import { rig } from "./path-helpers.js";

const IPT_FILES = [
  "nat-gateway.rules",
  "docker.rules",
  "kube-proxy.rules",
  "webserver-ssh.rules",
  "dns-notrack.rules",
  "stateless.rules",
  "all-matches.v4.rules",
];

/** Why the real tools cannot run here, or undefined. */
function toolsMissing(): string | undefined {
  if (typeof process.getuid === "function" && process.getuid() !== 0) return "not root";
  for (const t of [
    ["iptables-save", "--version"],
    ["nft", "--version"],
    ["ip", "netns", "list"],
  ]) {
    const r = spawnSync(t[0]!, t.slice(1), { encoding: "utf8" });
    if (r.error !== undefined || r.status !== 0) return `"${t.join(" ")}" does not work`;
  }
  return undefined;
}
const missing = toolsMissing();
if (missing !== undefined) process.stderr.write(`path-counters: round trips through the real tools skipped: ${missing}\n`);

let nsSeq = 0;
/** Runs shell-free commands in a fresh scratch namespace; returns stdout of the last one. */
function inScratchNs(steps: Array<{ cmd: string[]; input?: string }>): string {
  const ns = `ctlab-fwcnt-${process.pid}-${nsSeq++}`;
  const add = spawnSync("ip", ["netns", "add", ns], { encoding: "utf8" });
  if (add.status !== 0) throw new Error(`Cannot create namespace "${ns}": ${add.stderr}`);
  try {
    let out = "";
    for (const s of steps) {
      const r = spawnSync("ip", ["netns", "exec", ns, ...s.cmd], { encoding: "utf8", ...(s.input !== undefined ? { input: s.input } : {}) });
      if (r.status !== 0) throw new Error(`"${s.cmd.join(" ")}" failed: ${r.stderr}`);
      out = r.stdout;
    }
    return out;
  } finally {
    spawnSync("ip", ["netns", "del", ns]);
  }
}

/** iptables-save output without its date comments. */
const noComments = (t: string) =>
  t
    .split("\n")
    .filter((l) => !l.startsWith("#"))
    .join("\n");

describe("iptables-save -c", () => {
  for (const f of IPT_FILES) {
    it(`reproduces ${f} (real iptables-save -c output) byte for byte`, () => {
      const text = corpus(f);
      assert.equal(iptablesSaveWithCounters(parseIptables(text, { file: f })), text);
    });
  }

  it("writes the counters a replay produced, and parsing them back gives the same counters", () => {
    const fw = rig(corpus("nat-gateway.rules"), { local: ["eth0=203.0.113.1/24", "eth1=192.168.10.1/24"], host: { defaultIface: "eth0" } });
    fw.tcp({ src: "192.168.10.5", dst: "198.51.100.7", sport: 40000, dport: 443, flags: "S", seq: 1 });
    fw.tcp({ src: "198.51.100.7", dst: "203.0.113.1", sport: 443, dport: 40000, flags: "SA", seq: 9, ack: 2 });
    fw.tcp({ src: "198.51.100.9", dst: "203.0.113.1", sport: 50000, dport: 25, flags: "S", seq: 1 });
    const out = iptablesSaveWithCounters(fw.rs);
    assert.match(out, /^:INPUT DROP \[1:40\]$/m);
    assert.match(out, /^\[1:40\] -A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT$/m);
    assert.match(out, /^\[1:40\] -A POSTROUTING -s 192\.168\.10\.0\/24 -o eth0 -j MASQUERADE$/m);
    const back = parseIptables(out, { file: "back" });
    assert.deepEqual(compareCounters(fw.rs, back), []);
  });

  it("is what iptables-restore -c then iptables-save -c print", { skip: missing ?? false }, () => {
    const fw = rig(corpus("docker.rules"), { local: ["eth0=203.0.113.1/24", "docker0=172.17.0.1/16"], host: { defaultIface: "eth0" } });
    fw.tcp({ src: "198.51.100.7", dst: "203.0.113.1", sport: 40000, dport: 8080, flags: "S", seq: 1 });
    fw.tcp({ src: "172.17.0.2", dst: "198.51.100.7", sport: 80, dport: 40000, flags: "SA", seq: 9, ack: 2 });
    fw.udp({ src: "172.17.0.5", dst: "198.51.100.7", sport: 5000, dport: 53, payload: 33 });
    const ours = iptablesSaveWithCounters(fw.rs);
    const real = inScratchNs([{ cmd: ["iptables-restore", "-c"], input: ours }, { cmd: ["iptables-save", "-c"] }]);
    assert.equal(noComments(ours), noComments(real));
  });

  it("lists chains as iptables -L -v -n -x does", { skip: missing ?? false }, () => {
    for (const f of ["docker.rules", "nat-gateway.rules"]) {
      const rs = parseIptables(corpus(f), { file: f });
      for (const table of ["filter", "nat"]) {
        const real = inScratchNs([{ cmd: ["iptables-restore", "-c"], input: corpus(f) }, { cmd: ["iptables", "-t", table, "-L", "-v", "-n", "-x"] }]);
        const ours = formatIptablesListing(rs, table)
          .split("\n")
          .filter((l) => !l.startsWith("# table"))
          .join("\n");
        assert.equal(ours.trimEnd(), real.trimEnd(), `${f} ${table}`);
      }
    }
  });
});

describe("nft -j list ruleset with counters", () => {
  it("fills the counter statements with the model's counters and changes nothing else", () => {
    const json = corpus("dns-notrack.nft.json");
    const fw = rig(json);
    for (let i = 0; i < 3; i++) fw.udp({ src: "198.51.100.7", dst: "203.0.113.53", sport: 5000 + i, dport: 53, payload: 30 });
    const out = nftJsonWithCounters(json, fw.rs);
    assert.equal(out.split("\n").length, 2, "one line, as nft -j prints it");
    const back = parseNftJson(out, { file: "back" });
    assert.deepEqual(compareCounters(fw.rs, back, { policies: false, countedOnly: true }), []);
    assert.match(out, /"counter": ?\{"packets": ?3, ?"bytes": ?174\}/);
    const strip = (s: string) => JSON.stringify(JSON.parse(s), (k, v: unknown) => (k === "counter" ? null : v));
    assert.equal(strip(out), strip(json));
  });

  it("loads into nft with the same counter values", { skip: missing ?? false }, () => {
    const fw = rig(corpus("dns-notrack.nft.json"));
    resetCounters(fw.rs);
    fw.udp({ src: "198.51.100.7", dst: "203.0.113.53", sport: 5353, dport: 53, payload: 30 });
    fw.udp({ src: "198.51.100.7", dst: "203.0.113.53", sport: 5354, dport: 53, payload: 31 });
    const out = nftJsonWithCounters(corpus("dns-notrack.nft.json"), fw.rs);
    const dir = mkdtempSync(join(tmpdir(), "ctlab-nftcnt-"));
    try {
      const f = join(dir, "r.json");
      writeFileSync(f, out);
      const real = inScratchNs([{ cmd: ["nft", "-j", "-f", f] }, { cmd: ["nft", "-j", "list", "ruleset"] }]);
      const back = parseNftJson(real, { file: "real" });
      assert.deepEqual(compareCounters(fw.rs, back, { policies: false, countedOnly: true }), []);
      const counted = back.tables.flatMap((t) => t.chains.flatMap((c) => c.rules.filter((r) => r.counted)));
      assert.deepEqual(
        counted.map((r) => r.counters.packets),
        [2],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
