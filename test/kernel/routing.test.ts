/**
 * The INPUT and OUTPUT paths, the input route decision and the conntrack
 * helpers against the real kernel.
 *
 * - Routing: the router delivers locally (an AnyIP route `local
 *   203.0.113.0/24 dev lo`, addresses on r0 and sink0) and drops martians,
 *   unjoined multicast, TTL-expired and IPv6 packets its receive path
 *   refuses. Frames are written here, not re-framed by inject.ts (which
 *   leaves exactly these packets out). The router's own answers (RST, ICMP
 *   errors) are dropped in a raw-priority output chain, before conntrack.
 * - OUTPUT: a process in the router namespace sends UDP from its sockets
 *   (to a remote host, to itself over lo and over its own address); a
 *   reply is injected. ctlab replays the same packets in the same order,
 *   the router's own ones from its addresses (no --iif: they are OUTPUT).
 * - Helpers: FTP (active, passive, extended passive) and TFTP sessions
 *   forwarded through the router with the helper assigned by a rule.
 * Tables, events, conntrack -S, per-rule counters and (helpers) the
 * expectation table must be identical.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { compareCounters, resetCounters } from "../../src/firewall/counters.js";
import { HostModel, parseLocalSpecs } from "../../src/firewall/host.js";
import type { HostModelOptions } from "../../src/firewall/host.js";
import { parseIptables } from "../../src/firewall/iptables.js";
import type { Ruleset } from "../../src/firewall/model.js";
import { parseNftJson } from "../../src/firewall/nft.js";
import { convertNftText } from "../../src/host/nft-text.js";
import { parseAddr } from "../../src/firewall/values.js";
import { buildTcp, buildUdp } from "../../src/packet/build.js";
import type { TcpBuildOptions, UdpBuildOptions } from "../../src/packet/build.js";
import { PcapWriter } from "../../src/packet/writer.js";
import { replay } from "../../src/replay/replay.js";
import { compareObserved, formatDifferences, observedFromKernel, parseEventLine, TIMEOUT_SLACK } from "./compare.js";
import { scratchDir } from "./inject.js";
import { injectCapture } from "./kernel-run.js";
import type { Topology } from "./netns.js";
import { kernelSkipReason, loadRuleset, run, withKernelLock, withTopology, zeroStates } from "./netns.js";

const INGRESS_COUNTER = 'table netdev ctlab_ingress {\n  chain ingress { type filter hook ingress device "r0" priority 0; policy accept; counter; }\n}\n';
const C = "198.51.100.7";
const ANYIP = "203.0.113.10";
const PUBLIC = "203.0.113.1";
const PUBLIC6 = "2001:db8:ffff::1";
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A frame to inject (to r0's MAC) or a packet the router itself sends (ctlab side only). */
type Frame = { kind: "inject"; bytes: (mac: string) => Uint8Array } | { kind: "local"; bytes: (mac: string) => Uint8Array };

class Frames {
  readonly list: Frame[] = [];
  udp(o: UdpBuildOptions, kind: Frame["kind"] = "inject"): void {
    this.list.push({ kind, bytes: (mac) => buildUdp({ ...o, dstMac: mac }) });
  }
  tcp(o: TcpBuildOptions): void {
    this.list.push({ kind: "inject", bytes: (mac) => buildTcp({ win: 64240, ...o, dstMac: mac }) });
  }
}

function writePcap(path: string, frames: readonly Uint8Array[]): void {
  const w = new PcapWriter(path);
  frames.forEach((f, i) => w.writePacket(1_700_000_000 + Math.floor(i / 1000), (i % 1000) * 1_000_000, f));
  w.close();
}

function nftRuleset(t: Topology): Promise<Ruleset> {
  return run("nft", ["-j", "list", "ruleset"], { ns: t.rtNs }).then((r) => parseNftJson(r.stdout, { file: "kernel" }));
}

function dropFromKernel(rs: Ruleset): Ruleset {
  // The harness's ingress counter is not part of the compared ruleset.
  rs.tables.splice(0, rs.tables.length, ...rs.tables.filter((x) => x.name !== "ctlab_ingress"));
  return rs;
}

const a4 = (iface: string, cidr: string) => parseLocalSpecs([`${iface}=${cidr}`])[0]!;
const w = (a: string) => parseAddr(a)!.words;

interface Side {
  table: string[];
  events: string[];
  expectEvents: string[];
  stats: Record<string, number>;
  count: number;
  expect: string[];
  ruleset: Ruleset;
}

/**
 * `conntrack -E expect` streams: the same lines in the same order, the
 * remaining seconds within TIMEOUT_SLACK.
 */
function sameExpectEvents(k: readonly string[], c: readonly string[]): boolean {
  const split = (l: string) => /^(\s*\[[A-Z]+\]) (\d+) (.*)$/.exec(l);
  return (
    k.length === c.length &&
    k.every((l, i) => {
      const a = split(l);
      const b = split(c[i]!);
      return a !== null && b !== null && a[1] === b[1] && a[3] === b[3] && Math.abs(Number(a[2]) - Number(b[2])) <= TIMEOUT_SLACK;
    })
  );
}

/** Expectation lines with their remaining seconds within TIMEOUT_SLACK. */
function sameExpectations(k: string[], c: string[]): boolean {
  if (k.length !== c.length) return false;
  const strip = (l: string) => l.replace(/^(\d+) /, "");
  const sec = (l: string) => Number(/^(\d+) /.exec(l)?.[1] ?? "0");
  const ks = [...k].sort((x, y) => strip(x).localeCompare(strip(y)));
  const cs = [...c].sort((x, y) => strip(x).localeCompare(strip(y)));
  return ks.every((l, i) => strip(l) === strip(cs[i]!) && Math.abs(sec(l) - sec(cs[i]!)) <= TIMEOUT_SLACK);
}

interface Case {
  name: string;
  /** Ruleset text for `nft -f` (loaded after the router setup), or iptables-restore input. */
  nft?: string;
  iptables?: string;
  setup: (t: Topology) => Promise<void>;
  host: HostModelOptions;
  frames: (f: Frames) => void;
  /** Runs in the router namespace before injection: what the router sends itself (python3 -c). */
  local?: string;
  /** Read `conntrack -L expect`. */
  expect?: boolean;
}

async function kernelSide(
  c: Case,
  dir: string,
): Promise<{
  k: Awaited<ReturnType<typeof injectCapture>>;
  expect: string[];
  ruleset: Ruleset;
  injected: Uint8Array[];
  all: Array<{ local: boolean; bytes: Uint8Array }>;
}> {
  return withKernelLock(() =>
    withTopology(async (t) => {
      await c.setup(t);
      if (c.nft !== undefined) await loadRuleset(t, c.nft);
      if (c.iptables !== undefined) {
        const r = spawnSync("ip", ["netns", "exec", t.rtNs, "iptables-restore"], { input: c.iptables, encoding: "utf8" });
        if (r.status !== 0) throw new Error(`iptables-restore failed: ${r.stderr}`);
      }
      await loadRuleset(t, INGRESS_COUNTER);
      const f = new Frames();
      c.frames(f);
      const all = f.list.map((x) => ({ local: x.kind === "local", bytes: x.bytes(t.r0Mac) }));
      const injected = all.filter((x) => !x.local).map((x) => x.bytes);
      const pcap = join(dir, "inject.pcap");
      writePcap(pcap, injected);
      const local = c.local;
      const k = await injectCapture(t, pcap, {
        frames: injected.length,
        expectEvents: c.expect === true,
        ...(local !== undefined
          ? {
              beforeInject: async () => {
                await run("python3", ["-c", local], { ns: t.rtNs });
              },
            }
          : {}),
      });
      const expect =
        c.expect === true ? (await run("conntrack", ["-L", "expect"], { ns: t.rtNs, allowFail: true })).stdout.split("\n").filter((l) => l.trim() !== "") : [];
      const ruleset =
        c.iptables !== undefined
          ? parseIptables((await run("iptables-save", ["-c"], { ns: t.rtNs })).stdout, { file: "kernel" })
          : dropFromKernel(await nftRuleset(t));
      return { k, expect, ruleset, injected, all };
    }),
  );
}

/** ctlab over the same packets (the router's own ones included, in order), with the same ruleset text. */
async function ctlabSide(c: Case, frames: Array<{ local: boolean; bytes: Uint8Array }>, dir: string): Promise<Side> {
  const pcap = join(dir, "ctlab.pcap");
  writePcap(
    pcap,
    frames.map((f) => f.bytes),
  );
  const rs =
    c.iptables !== undefined ? parseIptables(c.iptables, { file: c.name }) : parseNftJson(convertNftText(c.nft ?? "", { file: c.name }), { file: c.name });
  resetCounters(rs);
  const events: string[] = [];
  const expectEvents: string[] = [];
  const r = await replay(pcap, {
    clock: "frozen",
    sysctls: { nf_conntrack_checksum: 0 },
    onEvent: (l) => events.push(l),
    onExpectEvent: (l) => expectEvents.push(l),
    firewall: { ruleset: rs, host: new HostModel(c.host) },
  });
  const stats: Record<string, number> = {};
  for (const [k, v] of r.tracker.stats.entries()) stats[k] = v;
  return {
    table: r.tracker.formatTable({ extended: true }),
    events,
    expectEvents,
    stats,
    count: r.tracker.count,
    expect: r.tracker.formatExpectations(),
    ruleset: rs,
  };
}

const ROUTER_SYSCTLS = (t: Topology, extra: Record<string, number> = {}) =>
  run(
    "sysctl",
    ["-qw", ...Object.entries({ "net.ipv4.conf.r0.accept_local": 0, "net.ipv4.conf.r0.route_localnet": 0, ...extra }).map(([k, v]) => `${k}=${v}`)],
    { ns: t.rtNs },
  );

/** The router as ctlab's host model: its addresses, the AnyIP route, r0's sysctls. */
const ROUTER_HOST: HostModelOptions = {
  addrs: [a4("r0", "192.0.2.254/32"), a4("r0", "10.9.0.1/24"), a4("sink0", `${PUBLIC}/32`), parseLocalSpecs([`sink0=${PUBLIC6}/128`])[0]!],
  localRoutes: [{ family: 4, lo: w("203.0.113.0"), hi: w("203.0.113.255"), prefixLen: 24, iface: "lo" }],
  defaultIface: "sink0",
  iif: "r0",
  oif: "sink0",
  sysctls: { "net.ipv4.conf.all.send_redirects": 0, "net.ipv4.conf.r0.send_redirects": 0 },
};

const COUNTING = (extra = "") => `table inet rtest {
  chain out_raw {
    type filter hook output priority -300; policy accept;
    ${extra}
  }
  chain pre {
    type filter hook prerouting priority 0; policy accept;
    ct state new counter
    ct state established counter
    ct state related counter
    ct state invalid counter
  }
  chain input {
    type filter hook input priority 0; policy accept;
    meta nfproto ipv4 counter
    meta nfproto ipv6 counter
  }
  chain forward {
    type filter hook forward priority 0; policy accept;
    meta nfproto ipv4 counter
    meta nfproto ipv6 counter
  }
}
`;

const CASES: readonly Case[] = [
  {
    name: "input route decision: local delivery, martians, broadcasts, multicast, TTL, IPv6 receive checks",
    nft: COUNTING("meta l4proto { icmp, ipv6-icmp, tcp } drop"),
    setup: async (t) => {
      await ROUTER_SYSCTLS(t);
      await run("ip", ["-n", t.rtNs, "addr", "add", "10.9.0.1/24", "dev", "r0"]);
      await run("ip", ["-n", t.rtNs, "addr", "add", `${PUBLIC}/32`, "dev", "sink0"]);
      await run("ip", ["-n", t.rtNs, "-6", "addr", "add", `${PUBLIC6}/128`, "dev", "sink0", "nodad"]);
      await run("ip", ["-n", t.rtNs, "route", "add", "local", "203.0.113.0/24", "dev", "lo"]);
    },
    host: ROUTER_HOST,
    frames: (f) => {
      // Delivered: the AnyIP range, the router's addresses, broadcasts, joined groups.
      f.tcp({ src: C, dst: ANYIP, sport: 40000, dport: 80, flags: "S", seq: 1000 });
      f.tcp({ src: C, dst: ANYIP, sport: 40000, dport: 80, flags: "A", seq: 1001, ack: 77 });
      f.udp({ src: C, dst: "192.0.2.254", sport: 40001, dport: 5353, payload: 20 });
      f.udp({ src: C, dst: PUBLIC, sport: 40002, dport: 5353, payload: 20 });
      f.udp({ src: C, dst: "255.255.255.255", sport: 40003, dport: 67, payload: 20 });
      f.udp({ src: "0.0.0.0", dst: "255.255.255.255", sport: 68, dport: 67, payload: 20 });
      f.udp({ src: C, dst: "10.9.0.255", sport: 40004, dport: 137, payload: 20 });
      f.udp({ src: C, dst: "224.0.0.1", sport: 40005, dport: 5000, payload: 20 });
      // Dropped by routing after PREROUTING: never confirmed.
      f.udp({ src: C, dst: "239.1.2.3", sport: 40006, dport: 5000, payload: 20 });
      f.udp({ src: "127.0.0.1", dst: ANYIP, sport: 40007, dport: 53, payload: 20 });
      f.udp({ src: C, dst: "127.0.0.1", sport: 40008, dport: 53, payload: 20 });
      f.udp({ src: "0.0.0.9", dst: ANYIP, sport: 40009, dport: 53, payload: 20 });
      f.udp({ src: C, dst: "0.1.2.3", sport: 40010, dport: 53, payload: 20 });
      f.udp({ src: "0.0.0.0", dst: ANYIP, sport: 40030, dport: 53, payload: 20 });
      f.udp({ src: C, dst: "0.0.0.0", sport: 40031, dport: 53, payload: 20 });
      f.udp({ src: "224.9.9.9", dst: ANYIP, sport: 40011, dport: 53, payload: 20 });
      f.udp({ src: "192.0.2.254", dst: ANYIP, sport: 40012, dport: 53, payload: 20 });
      f.udp({ src: ANYIP, dst: "198.18.0.1", sport: 40013, dport: 53, payload: 20 });
      f.udp({ src: "240.0.0.1", dst: ANYIP, sport: 40014, dport: 53, payload: 20 });
      f.udp({ src: C, dst: "198.18.0.2", sport: 40015, dport: 53, payload: 20, ttl: 1 });
      // Forwarded.
      f.udp({ src: C, dst: "198.18.0.3", sport: 40016, dport: 53, payload: 20 });
      f.udp({ src: "10.9.0.7", dst: "198.18.0.4", sport: 40017, dport: 53, payload: 20 });
      // IPv6: delivered, refused by ip6_rcv, not joined, link-local source not forwarded.
      f.udp({ src: "2001:db8:5::7", dst: PUBLIC6, sport: 40020, dport: 5353, payload: 20 });
      f.udp({ src: "fe80::7", dst: "ff02::1", sport: 40021, dport: 5000, payload: 20 });
      f.udp({ src: "fe80::7", dst: "ff02::2", sport: 40022, dport: 5000, payload: 20 });
      f.udp({ src: "fe80::7", dst: "ff02::1:ff00:99", sport: 40023, dport: 5000, payload: 20 });
      f.udp({ src: "2001:db8:5::7", dst: "ff05::fb", sport: 40024, dport: 5353, payload: 20 });
      f.udp({ src: "::1", dst: PUBLIC6, sport: 40025, dport: 53, payload: 20 });
      f.udp({ src: "2001:db8:5::7", dst: "ff01::1", sport: 40026, dport: 53, payload: 20 });
      f.udp({ src: "fe80::7", dst: "2001:db8:20::7", sport: 40027, dport: 53, payload: 20 });
      f.udp({ src: "2001:db8:5::7", dst: "2001:db8:20::8", sport: 40028, dport: 53, payload: 20 });
      f.udp({ src: "2001:db8:5::7", dst: "2001:db8:20::9", sport: 40029, dport: 53, payload: 20, ttl: 1 });
    },
  },
  {
    name: "rp_filter strict and accept_local / route_localnet on r0",
    nft: COUNTING("meta l4proto { icmp, ipv6-icmp, tcp } drop"),
    setup: async (t) => {
      await ROUTER_SYSCTLS(t, { "net.ipv4.conf.r0.rp_filter": 1, "net.ipv4.conf.r0.accept_local": 1, "net.ipv4.conf.r0.route_localnet": 1 });
      await run("ip", ["-n", t.rtNs, "addr", "add", "10.9.0.1/24", "dev", "r0"]);
      await run("ip", ["-n", t.rtNs, "addr", "add", `${PUBLIC}/32`, "dev", "sink0"]);
    },
    host: {
      addrs: [a4("r0", "192.0.2.254/32"), a4("r0", "10.9.0.1/24"), a4("sink0", `${PUBLIC}/32`)],
      defaultIface: "sink0",
      iif: "r0",
      oif: "sink0",
      sysctls: {
        "net.ipv4.conf.all.send_redirects": 0,
        "net.ipv4.conf.r0.send_redirects": 0,
        "net.ipv4.conf.r0.rp_filter": 1,
        "net.ipv4.conf.r0.accept_local": 1,
        "net.ipv4.conf.r0.route_localnet": 1,
      },
    },
    frames: (f) => {
      f.udp({ src: "10.9.0.7", dst: "10.9.0.1", sport: 41000, dport: 5353, payload: 20 });
      f.udp({ src: C, dst: "10.9.0.1", sport: 41001, dport: 5353, payload: 20 });
      f.udp({ src: "10.9.0.7", dst: "198.18.0.1", sport: 41002, dport: 53, payload: 20 });
      f.udp({ src: C, dst: "198.18.0.1", sport: 41003, dport: 53, payload: 20 });
      f.udp({ src: "10.9.0.1", dst: "192.0.2.254", sport: 41004, dport: 5353, payload: 20 });
      f.udp({ src: "10.9.0.7", dst: "127.0.0.1", sport: 41005, dport: 5353, payload: 20 });
    },
  },
  {
    name: "OUTPUT: the router's own sockets, to a remote host, over lo and to its own address",
    nft: COUNTING("meta l4proto { icmp, ipv6-icmp } drop\n    meta nfproto ipv4 udp dport != 9 counter"),
    setup: async (t) => {
      await run("ip", ["-n", t.rtNs, "addr", "add", `${PUBLIC}/32`, "dev", "sink0"]);
    },
    local: [
      "import socket",
      "def s(src, dst):",
      "    x = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)",
      "    x.bind(src)",
      "    x.sendto(b'x' * 20, dst)",
      "    return x",
      `l1 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); l1.bind(('127.0.0.1', 9999))`,
      `l2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); l2.bind(('${PUBLIC}', 9998))`,
      `a = s(('${PUBLIC}', 5000), ('${C}', 53))`,
      `b = s(('127.0.0.1', 5001), ('127.0.0.1', 9999))`,
      `c = s(('${PUBLIC}', 5002), ('${PUBLIC}', 9998))`,
      "l1.recv(100); l2.recv(100)",
    ].join("\n"),
    host: { addrs: [a4("r0", "192.0.2.254/32"), a4("sink0", `${PUBLIC}/32`)], defaultIface: "sink0" },
    frames: (f) => {
      f.udp({ src: PUBLIC, dst: C, sport: 5000, dport: 53, payload: 20 }, "local");
      f.udp({ src: "127.0.0.1", dst: "127.0.0.1", sport: 5001, dport: 9999, payload: 20 }, "local");
      f.udp({ src: PUBLIC, dst: PUBLIC, sport: 5002, dport: 9998, payload: 20 }, "local");
      // The answer to the first arrives from outside.
      f.udp({ src: C, dst: PUBLIC, sport: 53, dport: 5000, payload: 40 });
    },
  },
];

const FTP_CLIENT = "192.168.10.5";
const FTP_SERVER = "198.51.100.21";

/** An FTP control session (both directions injected: the router forwards them all). */
function ftpSession(f: Frames, cp: number, lines: Array<[">" | "<", string]>): void {
  let cs = 1000 + cp;
  let ss = 9000 + cp;
  f.tcp({ src: FTP_CLIENT, dst: FTP_SERVER, sport: cp, dport: 21, flags: "S", seq: cs++ });
  f.tcp({ src: FTP_SERVER, dst: FTP_CLIENT, sport: 21, dport: cp, flags: "SA", seq: ss++, ack: cs });
  f.tcp({ src: FTP_CLIENT, dst: FTP_SERVER, sport: cp, dport: 21, flags: "A", seq: cs, ack: ss });
  for (const [dir, text] of lines) {
    if (dir === ">") {
      f.tcp({ src: FTP_CLIENT, dst: FTP_SERVER, sport: cp, dport: 21, flags: "PA", seq: cs, ack: ss, payload: enc(text) });
      cs += text.length;
    } else {
      f.tcp({ src: FTP_SERVER, dst: FTP_CLIENT, sport: 21, dport: cp, flags: "PA", seq: ss, ack: cs, payload: enc(text) });
      ss += text.length;
    }
  }
}

function dataConn(f: Frames, src: string, sport: number, dst: string, dport: number): void {
  f.tcp({ src, dst, sport, dport, flags: "S", seq: 100 });
  f.tcp({ src: dst, dst: src, sport: dport, dport: sport, flags: "SA", seq: 500, ack: 101 });
  f.tcp({ src, dst, sport, dport, flags: "A", seq: 101, ack: 501 });
}

function helperFrames(f: Frames): void {
  // Active: PORT; the server connects from port 20.
  ftpSession(f, 40000, [
    ["<", "220 ready\r\n"],
    [">", "USER anonymous\r\n"],
    ["<", "331 password\r\n"],
    [">", "PORT 192,168,10,5,156,65\r\n"],
    ["<", "200 ok\r\n"],
  ]);
  dataConn(f, FTP_SERVER, 20, FTP_CLIENT, 40001);
  // Passive (227) and extended passive (229); the last expectation stays pending.
  ftpSession(f, 40010, [
    ["<", "220 ready\r\n"],
    [">", "USER anonymous\r\n"],
    ["<", "227 Entering Passive Mode (198,51,100,21,195,80).\r\n"],
  ]);
  dataConn(f, FTP_CLIENT, 40011, FTP_SERVER, 50000);
  ftpSession(f, 40020, [
    ["<", "220 ready\r\n"],
    [">", "USER anonymous\r\n"],
    ["<", "229 Entering Extended Passive Mode (|||50001|)\r\n"],
    [">", "EPSV\r\n"],
    ["<", "229 Entering Extended Passive Mode (|||50002|)\r\n"],
  ]);
  dataConn(f, FTP_CLIENT, 40021, FTP_SERVER, 50003);
  // TFTP: a read request, the answer from a new port, the client's ack.
  f.udp({ src: FTP_CLIENT, dst: FTP_SERVER, sport: 3000, dport: 69, payload: Uint8Array.of(0, 1, ...enc("boot.img\0octet\0")) });
  f.udp({ src: FTP_SERVER, dst: FTP_CLIENT, sport: 47000, dport: 3000, payload: Uint8Array.of(0, 3, 0, 1, 1, 2, 3, 4) });
  f.udp({ src: FTP_CLIENT, dst: FTP_SERVER, sport: 3000, dport: 47000, payload: Uint8Array.of(0, 4, 0, 1) });
  // A request whose answer never comes: a pending expectation.
  f.udp({ src: FTP_CLIENT, dst: FTP_SERVER, sport: 3001, dport: 69, payload: Uint8Array.of(0, 2, ...enc("up.txt\0octet\0")) });
}

const FORWARD_HOST: HostModelOptions = { addrs: [a4("r0", "192.0.2.254/32")], defaultIface: "sink0", iif: "r0", oif: "sink0" };

const HELPER_CASES: readonly Case[] = [
  {
    name: "FTP (active, passive, extended passive) and TFTP helpers via nft ct helper objects",
    nft: `table inet h {
  ct helper ftp-std { type "ftp" protocol tcp; l3proto inet; }
  ct helper tftp-std { type "tftp" protocol udp; l3proto inet; }
  chain pre {
    type filter hook prerouting priority filter; policy accept;
    tcp dport 21 ct helper set "ftp-std"
    udp dport 69 ct helper set "tftp-std"
    ct state new counter
    ct state established counter
    ct state related counter
  }
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established counter accept
    ct state related counter accept
    tcp dport 21 counter accept
    udp dport 69 counter accept
  }
}
`,
    setup: async () => {},
    host: FORWARD_HOST,
    frames: helperFrames,
    expect: true,
  },
  {
    name: "FTP and TFTP helpers via iptables -j CT --helper (raw table)",
    iptables: [
      "*raw",
      ":PREROUTING ACCEPT [0:0]",
      ":OUTPUT ACCEPT [0:0]",
      "-A PREROUTING -p tcp -m tcp --dport 21 -j CT --helper ftp",
      "-A PREROUTING -p udp -m udp --dport 69 -j CT --helper tftp",
      "COMMIT",
      "*filter",
      ":INPUT ACCEPT [0:0]",
      ":FORWARD DROP [0:0]",
      ":OUTPUT ACCEPT [0:0]",
      "-A FORWARD -m conntrack --ctstate RELATED -j ACCEPT",
      "-A FORWARD -m conntrack --ctstate ESTABLISHED -j ACCEPT",
      "-A FORWARD -p tcp -m tcp --dport 21 -j ACCEPT",
      "-A FORWARD -p udp -m udp --dport 69 -j ACCEPT",
      "COMMIT",
      "",
    ].join("\n"),
    setup: async () => {},
    host: FORWARD_HOST,
    frames: helperFrames,
    expect: true,
  },
];

const skip = kernelSkipReason();

describe("kernel: routing, INPUT/OUTPUT and helpers", { skip: skip ?? false }, () => {
  const results: Array<{ name: string; identical: boolean }> = [];
  let scratch: { dir: string; remove: () => void } | undefined;
  before(() => {
    scratch = scratchDir();
  });
  after(() => {
    scratch?.remove();
    process.stderr.write(`routing/helpers kernel agreement: ${results.filter((r) => r.identical).length}/${results.length} cases identical\n`);
    for (const r of results) process.stderr.write(`  ${r.identical ? "identical" : "DIFFERENT"}  ${r.name}\n`);
  });

  for (const c of [...CASES, ...HELPER_CASES]) {
    it(c.name, async () => {
      const dir = scratch!.dir;
      const ks = await kernelSide(c, dir);
      const mine = await ctlabSide(c, ks.all, dir);
      const kObs = observedFromKernel({ ...ks.k, ctState: zeroStates(), groups: new Map() });
      const cmp = compareObserved(kObs, {
        table: mine.table,
        events: mine.events.map((l) => parseEventLine(l)),
        stats: mine.stats,
        count: mine.count,
        ctState: zeroStates(),
        groups: new Map(),
      });
      const counterDiffs = compareCounters(mine.ruleset, ks.ruleset, { policies: c.iptables !== undefined, countedOnly: c.nft !== undefined });
      const expectOk = sameExpectations(ks.expect, mine.expect);
      const kExpEvents = ks.k.expectEvents ?? [];
      const expEventsOk = sameExpectEvents(kExpEvents, mine.expectEvents);
      const identical = cmp.identical && counterDiffs.length === 0 && expectOk && expEventsOk;
      results.push({ name: c.name, identical });
      const report = [
        cmp.identical ? "" : `table/events/stats:\n${formatDifferences(cmp.differences)}`,
        counterDiffs.length === 0
          ? ""
          : `counters (ctlab vs kernel):\n${counterDiffs.map((d) => `  - ${d.where} ${d.text}: ctlab ${d.expected.packets}/${d.expected.bytes}, kernel ${d.actual.packets}/${d.actual.bytes}`).join("\n")}`,
        expEventsOk
          ? ""
          : `expectation events (conntrack -E expect):\n  kernel:\n    ${kExpEvents.join("\n    ")}\n  ctlab:\n    ${mine.expectEvents.join("\n    ")}`,
        expectOk ? "" : `expectations:\n  kernel:\n    ${ks.expect.join("\n    ")}\n  ctlab:\n    ${mine.expect.join("\n    ")}`,
        `kernel table:\n  ${ks.k.table.join("\n  ")}\nctlab table:\n  ${mine.table.join("\n  ")}`,
      ]
        .filter(Boolean)
        .join("\n");
      assert.ok(identical, `${c.name}: ctlab and the kernel differ\n${report}`);
      if (c.expect === true) {
        assert.ok(ks.expect.length > 0, "the case leaves pending expectations to compare");
        assert.ok(
          kExpEvents.some((l) => l.includes("[DESTROY]")),
          "the case has expectation events to compare",
        );
      }
    });
  }
});
