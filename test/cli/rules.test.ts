/**
 * The firewall commands end to end: `replay --rules`, `rules analyze`,
 * `rules notrack`, `rules compare`, and their errors (one line, position,
 * exit code, never a stack trace).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { buildTcp, buildUdp } from "../../src/packet/build.js";
import { PcapWriter } from "../../src/packet/writer.js";

const BIN = fileURLToPath(new URL("../../src/cli/bin.js", import.meta.url));
const CORPUS = fileURLToPath(new URL("../../../test/firewall/rulesets/", import.meta.url));

function run(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", timeout: 60000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const dir = mkdtempSync(join(tmpdir(), "ctlab-rules-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const file = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

/** A LAN host through a MASQUERADE gateway, a port forward, a dropped SYN, a DNS query. */
const cap = join(dir, "gw.pcap");
{
  const w = new PcapWriter(cap);
  const frames = [
    buildTcp({ src: "192.168.10.5", dst: "198.51.100.7", sport: 40000, dport: 443, flags: "S", seq: 1000, win: 64240 }),
    buildTcp({ src: "198.51.100.7", dst: "203.0.113.1", sport: 443, dport: 40000, flags: "SA", seq: 5000, ack: 1001, win: 65160 }),
    buildTcp({ src: "192.168.10.5", dst: "198.51.100.7", sport: 40000, dport: 443, flags: "A", seq: 1001, ack: 5001, win: 64240 }),
    buildTcp({ src: "198.51.100.9", dst: "203.0.113.1", sport: 50000, dport: 80, flags: "S", seq: 7000, win: 64240 }),
    buildTcp({ src: "198.51.100.9", dst: "203.0.113.1", sport: 50001, dport: 25, flags: "S", seq: 7000, win: 64240 }),
    buildUdp({ src: "192.168.10.6", dst: "192.168.10.1", sport: 41000, dport: 53, payload: 30 }),
  ];
  frames.forEach((f, i) => w.writePacket(1_700_000_000, i * 1_000_000, f));
  w.close();
}
const GW = ["--local", "eth0=203.0.113.1/24", "eth1=192.168.10.1/24"];
const NATGW = CORPUS + "nat-gateway.rules";

/** A one-line error on stderr, no stack trace. */
function oneLineError(stderr: string): string {
  const lines = stderr.trim().split("\n");
  assert.equal(lines.length, 1, stderr);
  assert.doesNotMatch(stderr, /\n\s+at /);
  return lines[0]!;
}

describe("replay --rules", () => {
  it("replays through the ruleset: verdicts, NAT reply tuples in --table, per-rule counters", () => {
    const r = run(["replay", cap, "--rules", NATGW, ...GW, "--clock", "frozen", "--sysctl", "nf_conntrack_checksum=0", "--table", "-"]);
    assert.equal(r.code, 0, r.stderr);
    const table = r.stdout.trim().split("\n");
    assert.ok(
      table.includes(
        "ipv4     2 tcp      6 432000 ESTABLISHED src=192.168.10.5 dst=198.51.100.7 sport=40000 dport=443 src=198.51.100.7 dst=203.0.113.1 sport=443 dport=40000 [ASSURED] mark=0 use=1",
      ),
      r.stdout,
    );
    assert.ok(
      table.some((l) =>
        l.includes("src=198.51.100.9 dst=203.0.113.1 sport=50000 dport=80 [UNREPLIED] src=192.168.10.10 dst=198.51.100.9 sport=80 dport=50000"),
      ),
      r.stdout,
    );
    assert.equal(table.length, 3, "the SYN to port 25 was dropped before confirmation");
    assert.match(r.stderr, /Firewall: .*nat-gateway\.rules \(iptables, 12 rules\)/);
    assert.match(r.stderr, /Packets: 6 IP packets, 5 accepted, 1 dropped; input 2, forward 4, output 0/);
    assert.match(r.stderr, /Chain INPUT \(policy DROP 1 packets, 40 bytes\)/);
    assert.match(r.stderr, / +1 +40 DNAT +6 +-- +eth0 +\* +0\.0\.0\.0\/0 +0\.0\.0\.0\/0 +tcp dpt:80 to:192\.168\.10\.10:80/);
  });

  it("--counters - writes the ruleset back as iptables-save -c", () => {
    const r = run(["replay", cap, "--rules", NATGW, ...GW, "--counters", "-", "--sysctl", "nf_conntrack_checksum=0"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\*filter$/m);
    assert.match(r.stdout, /^:INPUT DROP \[1:40\]$/m);
    assert.match(r.stdout, /^\[1:40\] -A POSTROUTING -s 192\.168\.10\.0\/24 -o eth0 -j MASQUERADE$/m);
    assert.match(r.stdout, /^\[0:0\] -A INPUT -i lo -j ACCEPT$/m);
    assert.match(r.stderr, /Per-rule counters/);
  });

  it("--counters FILE writes nft JSON for an nft ruleset", () => {
    const out = join(dir, "counters.json");
    const r = run(["replay", cap, "--rules", CORPUS + "nat-gateway.nft.json", ...GW, "--counters", out, "-q", "--sysctl", "nf_conntrack_checksum=0"]);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(readFileSync(out, "utf8")) as { nftables: unknown[] };
    assert.ok(Array.isArray(doc.nftables) && doc.nftables.length > 5);
  });

  it("--verdicts - lists every IP packet with the rule or policy that decided", () => {
    const r = run(["replay", cap, "--rules", NATGW, ...GW, "--verdicts", "-", "--sysctl", "nf_conntrack_checksum=0"]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.equal(lines.length, 6);
    assert.equal(lines[0], "1\taccept\tforward\tnew\ttcp 192.168.10.5:40000 > 198.51.100.7:443 [SYN]\t" + NATGW + ":12:1 -A FORWARD -i eth1 -o eth0 -j ACCEPT");
    assert.equal(lines[4], "5\tdrop\tinput\tnew\ttcp 198.51.100.9:50001 > 203.0.113.1:25 [SYN]\tpolicy of ip filter INPUT");
  });

  it("--json carries a firewall section", () => {
    const r = run(["replay", cap, "--rules", NATGW, ...GW, "--json", "--sysctl", "nf_conntrack_checksum=0"]);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { firewall: { packets: { dropped: number }; conntrack: { ipv4: boolean }; counters: { rules: unknown[] } } };
    assert.equal(j.firewall.packets.dropped, 1);
    assert.equal(j.firewall.conntrack.ipv4, true);
    assert.equal(j.firewall.counters.rules.length, 12);
  });

  it("a stateless ruleset tracks nothing: empty table", () => {
    const r = run(["replay", cap, "--rules", CORPUS + "stateless.rules", "--table", "-", "--sysctl", "nf_conntrack_checksum=0"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /Conntrack: not registered/);
    assert.match(r.stderr, /Table at the end: 0 entries/);
  });

  it("reports a bad ruleset as one line with file:line:column, exit 1", () => {
    const bad = file("bad.rules", "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPTT\nCOMMIT\n");
    const r = run(["replay", cap, "--rules", bad]);
    assert.equal(r.code, 1);
    assert.match(oneLineError(r.stderr), /^ctlab: Invalid ruleset at .*bad\.rules:3:\d+: /);
  });

  it("reports a bad nft JSON ruleset with its JSON path", () => {
    const bad = file(
      "bad.json",
      '{"nftables": [{"table": {"family": "ip", "name": "t"}}, {"chain": {"family": "ip", "table": "t", "name": "c", "type": "filter", "hook": "nowhere", "prio": 0, "policy": "accept"}}]}',
    );
    const r = run(["rules", "analyze", bad]);
    assert.equal(r.code, 1);
    assert.match(oneLineError(r.stderr), /^ctlab: Invalid ruleset at .*bad\.json:\$\.nftables\[1\]/);
  });

  it("refuses unreadable files, host options without --rules, and bad --local values", () => {
    let r = run(["replay", cap, "--rules", join(dir, "missing.rules")]);
    assert.equal(r.code, 2);
    assert.match(oneLineError(r.stderr), /^ctlab: Cannot read ruleset ".*missing\.rules": ENOENT$/);
    r = run(["replay", cap, "--counters", "-"]);
    assert.equal(r.code, 1);
    assert.match(oneLineError(r.stderr), /"--counters" needs "--rules"/);
    r = run(["replay", cap, "--enable-hooks"]);
    assert.equal(r.code, 1);
    assert.match(oneLineError(r.stderr), /"--enable-hooks" needs "--rules"/);
    r = run(["replay", cap, "--local", "eth0=203.0.113.1/24", "--sysctl", "net.ipv4.conf.all.rp_filter=3"]);
    assert.equal(r.code, 1);
    assert.match(oneLineError(r.stderr), /Invalid value "3" for "net.ipv4.conf.all.rp_filter": must be 0 to 2/);
    r = run(["replay", cap, "--rules", NATGW, "--local", "eth0=203.0.113.300"]);
    assert.equal(r.code, 1);
    assert.match(oneLineError(r.stderr), /^ctlab: Invalid local address "eth0=203\.0\.113\.300": expected \[IFACE=\]ADDR\[\/LEN\]/);
    r = run(["replay", cap, "--rules", NATGW, "--counters", "-", "--json"]);
    assert.equal(r.code, 1);
    assert.match(oneLineError(r.stderr), /"--counters -" and "--json" all write to standard output/);
  });
});

describe("replay --events with a helper", () => {
  it("interleaves the expectation events as conntrack -E expect prints them, in the kernel's order", () => {
    const c = join(dir, "ftp.pcap");
    const w = new PcapWriter(c);
    const cl = "192.168.10.5";
    const sv = "198.51.100.21";
    // The helper reads only lines after a newline it saw: the first line of a direction opens nothing (find_nl_seq).
    const user = "USER anonymous\r\n";
    const port = "PORT 192,168,10,5,156,65\r\n";
    const frames = [
      buildTcp({ src: cl, dst: sv, sport: 40000, dport: 21, flags: "S", seq: 100, win: 64240 }),
      buildTcp({ src: sv, dst: cl, sport: 21, dport: 40000, flags: "SA", seq: 900, ack: 101, win: 64240 }),
      buildTcp({ src: cl, dst: sv, sport: 40000, dport: 21, flags: "A", seq: 101, ack: 901, win: 64240 }),
      buildTcp({ src: cl, dst: sv, sport: 40000, dport: 21, flags: "PA", seq: 101, ack: 901, win: 64240, payload: new TextEncoder().encode(user) }),
      buildTcp({
        src: cl,
        dst: sv,
        sport: 40000,
        dport: 21,
        flags: "PA",
        seq: 101 + user.length,
        ack: 901,
        win: 64240,
        payload: new TextEncoder().encode(port),
      }),
      buildTcp({ src: sv, dst: cl, sport: 20, dport: 40001, flags: "S", seq: 5000, win: 64240 }),
    ];
    frames.forEach((f, i) => w.writePacket(1_700_000_000, i * 1_000_000, f));
    w.close();
    const rules = file(
      "ftp.rules",
      ["*raw", ":PREROUTING ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", "-A PREROUTING -p tcp -m tcp --dport 21 -j CT --helper ftp", "COMMIT", ""].join("\n"),
    );
    const replayEvents = [
      "replay",
      c,
      "--rules",
      rules,
      "--local",
      "eth0=192.0.2.1/24",
      "--iif",
      "eth0",
      "--sysctl",
      "nf_conntrack_checksum=0",
      "--events",
      "-",
    ];
    const r = run([...replayEvents, "-q"]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    const exp = (left: number) =>
      `${left} proto=6 src=198.51.100.21 dst=192.168.10.5 sport=0 dport=40001 mask-src=255.255.255.255 mask-dst=255.255.255.255 sport=0 dport=65535 ` +
      `master-src=192.168.10.5 master-dst=198.51.100.21 sport=40000 dport=21 class=0 helper=ftp`;
    // NEW when the PORT command is read; DESTROY (a millisecond later: 299 s left, rounded down as the kernel does) as the data connection takes it.
    const iNew = lines.indexOf(`    [NEW] ${exp(300)}`);
    const iDestroy = lines.indexOf(`[DESTROY] ${exp(299)}`);
    const iData = lines.findIndex((l) => /^ +\[NEW\] ipv4 +2 tcp +6 .*sport=20 dport=40001/.test(l));
    assert.ok(iNew >= 0 && iDestroy > iNew && iData === iDestroy + 1, r.stdout);
    const ts = run([...replayEvents, "--events-timestamps", "-q"]);
    assert.ok(ts.stdout.split("\n").includes(`[1700000000.004000]\t    [NEW] ${exp(300)}`), ts.stdout);
  });
});

describe("replay with host options and no ruleset", () => {
  it("tracks every packet, and routing decides what is confirmed", () => {
    const c = join(dir, "host.pcap");
    const w = new PcapWriter(c);
    const frames = [
      buildUdp({ src: "192.168.10.6", dst: "192.168.10.1", sport: 41000, dport: 53, payload: 30 }),
      // From the host's own address, arriving on eth1: a martian source.
      buildUdp({ src: "192.168.10.1", dst: "198.51.100.7", sport: 41001, dport: 53, payload: 30 }),
      buildUdp({ src: "192.168.10.6", dst: "239.255.255.250", sport: 1900, dport: 1900, payload: 30 }),
      buildUdp({ src: "192.168.10.6", dst: "127.0.0.1", sport: 41002, dport: 53, payload: 30 }),
      buildTcp({ src: "192.168.10.6", dst: "198.51.100.7", sport: 40000, dport: 443, flags: "S", seq: 1000, win: 64240 }),
    ];
    frames.forEach((f, i) => w.writePacket(1_700_000_000, i * 1_000_000, f));
    w.close();
    const r = run(["replay", c, "--local", "eth1=192.168.10.1/24", "--iif", "eth1", "--table", "-"]);
    assert.equal(r.code, 0, r.stderr);
    const table = r.stdout.trim().split("\n");
    assert.equal(table.length, 2, r.stdout);
    assert.match(r.stdout, /dport=53 .*dport=41000/);
    assert.match(r.stdout, /dport=443/);
    assert.match(r.stderr, /input 3, forward 2, output 0; 3 dropped by routing/);
    assert.match(r.stderr, /routing: 1 martian source \(never confirmed\)/);
    assert.match(r.stderr, /routing: 1 martian destination/);
    assert.match(r.stderr, /routing: 1 multicast group not joined/);
    const j = run(["replay", c, "--local", "eth1=192.168.10.1/24", "--iif", "eth1", "--sysctl", "net.ipv4.conf.eth1.route_localnet=1", "--json"]);
    assert.equal(j.code, 0, j.stderr);
    const doc = JSON.parse(j.stdout) as { host: { routeDrops: Record<string, number> } };
    assert.equal(doc.host.routeDrops["martianDestination"], 0, "route_localnet lets 127.0.0.1 in");
    assert.equal(doc.host.routeDrops["martianSource"], 1);

    // The same routing sysctls from --sysctl-file (`sysctl -a` output: unmodelled keys are no error), --sysctl over them.
    const sys = file(
      "routing.conf",
      [
        "net.ipv4.conf.all.arp_filter = 0",
        "net.ipv4.conf.eth1.route_localnet = 1",
        "net/ipv4/conf/eth1/accept_local = 1",
        "net.netfilter.nf_conntrack_udp_timeout = 45",
      ].join("\n") + "\n",
    );
    const viaFile = (extra: string[]) => {
      const x = run(["replay", c, "--local", "eth1=192.168.10.1/24", "--iif", "eth1", "--sysctl-file", sys, ...extra, "--json"]);
      assert.equal(x.code, 0, x.stderr);
      return JSON.parse(x.stdout) as { host: { routeDrops: Record<string, number> }; sysctls: Record<string, number> };
    };
    const f1 = viaFile([]);
    assert.equal(f1.host.routeDrops["martianDestination"], 0, "route_localnet from the file lets 127.0.0.1 in");
    assert.equal(f1.host.routeDrops["martianSource"], 0, "accept_local from the file (slash form) takes the host's own source");
    assert.equal(f1.sysctls["nf_conntrack_udp_timeout"], 45);
    const f2 = viaFile(["--sysctl", "net.ipv4.conf.eth1.route_localnet=0"]);
    assert.equal(f2.host.routeDrops["martianDestination"], 1, "--sysctl wins over the file");
    assert.equal(f2.host.routeDrops["martianSource"], 0);
    const bad = file("bad-routing.conf", "net.ipv4.conf.all.rp_filter = 7\n");
    const e = run(["replay", c, "--local", "eth1=192.168.10.1/24", "--iif", "eth1", "--sysctl-file", bad]);
    assert.equal(e.code, 1);
    assert.match(oneLineError(e.stderr), /bad-routing\.conf:1: Invalid value "7" for "net\.ipv4\.conf\.all\.rp_filter": must be 0 to 2/);
  });
});

describe("rules analyze / notrack", () => {
  it("analyze names the rules that make traffic tracked", () => {
    const r = run(["rules", "analyze", NATGW]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Tracked: IPv4\./);
    assert.match(r.stdout, /needs conntrack: MASQUERADE \(xt_MASQUERADE\)/);
    const j = JSON.parse(run(["rules", "analyze", CORPUS + "stateless.rules", "--json"]).stdout) as { tracking: { none: boolean } };
    assert.equal(j.tracking.none, true);
  });

  it("notrack prints the raw rules for both directions in the ruleset's syntax", () => {
    const r = run(["rules", "notrack", CORPUS + "webserver-ssh.rules", "--for", "udp dport 53"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^-A PREROUTING -p udp -m udp --dport 53 -j CT --notrack$/m);
    assert.match(r.stdout, /^-A OUTPUT -p udp -m udp --sport 53 -j CT --notrack$/m);
    const n = run(["rules", "notrack", CORPUS + "webserver-ssh.nft.json", "--for", "udp dport 53"]);
    assert.equal(n.code, 0, n.stderr);
    assert.match(n.stdout, /udp dport 53 notrack/);
  });

  it("notrack refuses a malformed selector in one line", () => {
    const r = run(["rules", "notrack", NATGW, "--for", "udp dport banana"]);
    assert.equal(r.code, 1);
    assert.match(oneLineError(r.stderr), /^ctlab: Invalid selector "udp dport banana": /);
  });
});

describe("rules compare", () => {
  const relaxed = file("relaxed.rules", readFileSync(NATGW, "utf8").replace(":INPUT DROP", ":INPUT ACCEPT"));

  it("shows the packets whose verdict differs with the rule that decided, and the table under each", () => {
    const r = run(["rules", "compare", NATGW, relaxed, "--capture", cap, ...GW, "--sysctl", "nf_conntrack_checksum=0"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Verdicts: 5 identical, 1 differ \(0 accepted by A and dropped by B, 1 dropped by A and accepted by B\)/);
    assert.match(r.stdout, /packet 5: tcp 198\.51\.100\.9:50001 > 203\.0\.113\.1:25 \[SYN\]/);
    assert.match(r.stdout, /A: drop by the policy of ip filter INPUT/);
    assert.match(r.stdout, /B: accept by the policy of ip filter INPUT/);
    assert.match(r.stdout, /entries at the end +3 +4/);
  });

  it("--json", () => {
    const r = run(["rules", "compare", NATGW, NATGW, "--capture", cap, ...GW, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { differ: number; packets: number };
    assert.equal(j.differ, 0);
    assert.equal(j.packets, 6);
  });

  it("needs --capture", () => {
    const r = run(["rules", "compare", NATGW, relaxed]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--capture/);
  });
});
