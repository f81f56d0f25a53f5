/**
 * The firewall against the real kernel: the same ruleset is loaded into the
 * router namespace (iptables-restore with the nft backend, or nft -j -f),
 * the same capture is injected and replayed through ctlab, and the per-rule
 * counters (and policy counters for iptables), the final conntrack table
 * (NAT reply tuples included), the events and `conntrack -S` are compared.
 *
 * The harness's router forwards everything that enters r0 out of sink0, so
 * the rulesets are the corpus files adapted to that topology: interface names
 * mapped onto r0/sink0, and host rulesets (INPUT) turned into forwarding ones
 * (INPUT and FORWARD swapped). Nothing is sent to the router's own address.
 * Where the kernel picks a port at random (--random, --random-fully, a port
 * clash), the reply port is compared as "*" on both sides, and no reply is
 * sent to such a port.
 *
 * Only the harness's ingress counter is loaded next to the ruleset (it does
 * not need conntrack), so a stateless ruleset must leave both tables empty.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { compareCounters, resetCounters } from "../../src/firewall/counters.js";
import { HostModel } from "../../src/firewall/host.js";
import { parseIpsetSave } from "../../src/firewall/ipset.js";
import { parseIptables } from "../../src/firewall/iptables.js";
import type { Ruleset } from "../../src/firewall/model.js";
import { parseNftJson } from "../../src/firewall/nft.js";
import { convertNftText } from "../../src/host/nft-text.js";
import { buildIcmp, buildTcp, buildUdp } from "../../src/packet/build.js";
import { replay } from "../../src/replay/replay.js";
import type { TimedFrame } from "../scenarios/types.js";
import { compareObserved, formatDifferences, observedFromKernel, parseEventLine } from "./compare.js";
import type { Observed } from "./compare.js";
import { reframe, scratchDir, scenarioIpRecords } from "./inject.js";
import { injectCapture } from "./kernel-run.js";
import type { KernelResult } from "./kernel-run.js";
import { kernelSkipReason, loadRuleset, run, withKernelLock, withTopology, zeroStates } from "./netns.js";

const CORPUS = fileURLToPath(new URL("../../../test/firewall/rulesets/", import.meta.url));
/** Rulesets the tools wrote themselves (test/firewall/corpus/SOURCES.md). */
const REAL = fileURLToPath(new URL("../../../test/firewall/corpus/", import.meta.url));
const real = (name: string): string => readFileSync(REAL + name, "utf8");
// nft 1.0.6 knows "dstnat" only for prerouting; newer nft prints it for the output hook too (the same -100).
const dockerNft = (): string => real("docker-nftables.nft").replace("hook output priority dstnat", "hook output priority -100");
/** A corpus file with its counters zeroed (nft -j -f would load them as the initial values). */
const corpus = (name: string): string =>
  readFileSync(CORPUS + name, "utf8").replace(/"counter": \{"packets": \d+, "bytes": \d+\}/g, '"counter": {"packets": 0, "bytes": 0}');

/** Address of sink0 in the router: what MASQUERADE picks, the "public" address of NAT cases. */
const PUBLIC = "203.0.113.1";
const PUBLIC6 = "2001:db8:ffff::1";

/** Only the frame counter the harness needs: no conntrack user. */
const INGRESS_COUNTER = [
  "table netdev ctlab_ingress {",
  '  chain ingress { type filter hook ingress device "r0" priority 0; policy accept; counter; }',
  "}",
  "",
].join("\n");

/**
 * The router's own IPv6 control traffic (MLD reports, at moments the kernel
 * chooses) dropped before any hook of the ruleset, for rulesets whose
 * counted rules serve OUTPUT and FORWARD alike.
 */
const QUIET_ROUTER = "table inet ctlab_quiet {\n  chain out { type filter hook output priority -400; policy accept; meta l4proto ipv6-icmp drop; }\n}\n";

// ---------------------------------------------------------------------------
// Captures

const T0 = 1_700_000_000;

/** Builds a capture: frames 1 ms apart. */
class Cap {
  readonly frames: TimedFrame[] = [];
  private us = 0;
  emit(frame: Uint8Array): void {
    this.frames.push({ tsSec: T0 + Math.floor(this.us / 1e6), tsNsec: (this.us % 1e6) * 1000, frame });
    this.us += 1000;
  }

  /**
   * A TCP exchange. Client packets go from c:cp to `to` (default s:sp);
   * server packets ("<" in the script) go from `from` (default s:sp) to
   * `back` (default c:cp): DNAT and SNAT cases set those. Script tokens:
   * S, SA, A, PA:len, FA, R, RA, optionally with "<" for the server side.
   */
  tcp(o: { c: string; cp: number; s: string; sp: number; to?: [string, number]; from?: [string, number]; back?: [string, number] }, script: string): void {
    const next = { c: 1_000_000 + o.cp * 7, s: 2_000_000 + o.sp * 13 };
    for (const tok of script.trim().split(/\s+/)) {
      const server = tok.includes("<");
      const [flagsText = "", lenText] = tok.replace("<", "").split(":");
      const len = lenText === undefined ? 0 : Number(lenText);
      const me = server ? "s" : "c";
      const other = server ? "c" : "s";
      const syn = flagsText.includes("S");
      const fin = flagsText.includes("F");
      const ack = flagsText.includes("A");
      const [src, sport] = server ? (o.from ?? [o.s, o.sp]) : [o.c, o.cp];
      const [dst, dport] = server ? (o.back ?? [o.c, o.cp]) : (o.to ?? [o.s, o.sp]);
      this.emit(buildTcp({ src, dst, sport, dport, flags: flagsText, seq: next[me], ack: ack ? next[other] : 0, win: 64240, payload: len }));
      next[me] = (next[me] + len + (syn ? 1 : 0) + (fin ? 1 : 0)) >>> 0;
    }
  }

  udp(src: string, sport: number, dst: string, dport: number, len = 40): void {
    this.emit(buildUdp({ src, dst, sport, dport, payload: len }));
  }

  ping(src: string, dst: string, id: number, reply?: { src: string; dst: string }): void {
    this.emit(buildIcmp({ src, dst, id, seq: 1, payload: 32 }));
    if (reply) this.emit(buildIcmp({ src: reply.src, dst: reply.dst, id, seq: 1, type: reply.src.includes(":") ? 129 : 0, payload: 32 }));
  }
}

// ---------------------------------------------------------------------------
// Ruleset adaptations

/** Swaps two words everywhere (chain names or hook names). */
function swap(text: string, a: string, b: string): string {
  return text.replace(new RegExp(`\\b(${a}|${b})\\b`, "g"), (m) => (m === a ? b : a));
}

/** Renames interfaces (whole names only, so `eth+` patterns stay as they are). */
function ifaces(text: string, map: Readonly<Record<string, string>>): string {
  let out = text;
  for (const [from, to] of Object.entries(map)) out = out.replace(new RegExp(`(?<![\\w+])${from}(?![\\w+*])`, "g"), to);
  return out;
}

interface Case {
  readonly name: string;
  readonly syntax: "iptables" | "ip6tables" | "nft" | "nft-text";
  readonly text: string;
  readonly capture: (c: Cap) => void;
  /** Reply ports the kernel picks at random are compared as "*". */
  readonly randomPorts?: boolean;
  /** A stateless ruleset: both tables must be empty. */
  readonly expectEmpty?: boolean;
  /** Chains whose counters the router's own traffic disturbs (IPv6 MLD reports leave through OUTPUT). */
  readonly ignoreChains?: readonly string[];
  /** `ipset save` text the ruleset's `-m set` matches need: restored in the router, given to ctlab. */
  readonly ipsets?: string;
  /** Drop the router's own IPv6 control packets before the ruleset sees them (QUIET_ROUTER). */
  readonly quietRouter?: boolean;
}

const C1 = "198.51.100.7";
const C2 = "198.51.100.8";
const WEB = "203.0.113.10";

function webTraffic(c: Cap): void {
  c.tcp({ c: C1, cp: 40001, s: WEB, sp: 80 }, "S SA< A PA:120 A< PA<:900 A FA A< FA< A");
  c.tcp({ c: C2, cp: 40002, s: WEB, sp: 443 }, "S SA< A PA:300 PA<:1400 A");
  c.tcp({ c: C1, cp: 40003, s: WEB, sp: 25 }, "S S");
  for (let i = 0; i < 6; i++) c.tcp({ c: C2, cp: 41000 + i, s: WEB, sp: 22 }, "S");
  c.tcp({ c: C1, cp: 40004, s: WEB, sp: 22 }, "S SA< A PA:40");
  c.tcp({ c: C1, cp: 40005, s: WEB, sp: 80 }, "SF");
  c.tcp({ c: C2, cp: 40006, s: WEB, sp: 8080 }, "A PA:10");
  c.ping(C1, WEB, 7, { src: WEB, dst: C1 });
  c.udp(C1, 5353, WEB, 53, 30);
  c.udp(WEB, 53, C1, 5353, 80);
  c.udp(C2, 123, WEB, 123, 48);
}

function dnsTraffic(c: Cap): void {
  for (let i = 0; i < 5; i++) {
    c.udp(C1, 33000 + i, WEB, 53, 35);
    c.udp(WEB, 53, C1, 33000 + i, 90);
  }
  c.tcp({ c: C2, cp: 40100, s: WEB, sp: 53 }, "S SA< A PA:40 PA<:200 A");
  c.tcp({ c: C2, cp: 40101, s: WEB, sp: 22 }, "S SA< A");
  c.tcp({ c: C2, cp: 40102, s: WEB, sp: 80 }, "S");
}

function masqueradeTraffic(c: Cap): void {
  const lan = ["192.168.10.5", "192.168.10.6", "192.168.10.7"];
  c.tcp({ c: lan[0]!, cp: 40000, s: C1, sp: 443, back: [PUBLIC, 40000] }, "S SA< A PA:200 PA<:1200 A FA FA< A");
  c.udp(lan[1]!, 41000, C2, 53, 30);
  c.udp(C2, 53, PUBLIC, 41000, 120);
  c.ping(lan[2]!, C1, 99, { src: C1, dst: PUBLIC });
  // Same source port to the same server from another host: the kernel picks a random port.
  c.tcp({ c: lan[1]!, cp: 40000, s: C1, sp: 443 }, "S");
  c.tcp({ c: C1, cp: 50000, s: lan[0]!, sp: 80 }, "S");
}

function portForwardTraffic(c: Cap): void {
  c.tcp({ c: C1, cp: 50000, s: PUBLIC, sp: 80, from: ["192.168.10.10", 80] }, "S SA< A PA:100 PA<:500 A");
  c.tcp({ c: C2, cp: 50001, s: PUBLIC, sp: 2222, from: ["192.168.10.20", 22] }, "S SA< A");
  c.udp(C1, 51820, PUBLIC, 51820, 148);
  c.udp("192.168.10.30", 51820, C1, 51820, 92);
  c.tcp({ c: C2, cp: 50002, s: PUBLIC, sp: 443 }, "S");
  c.tcp({ c: C2, cp: 50003, s: "192.168.10.50", sp: 80 }, "S");
}

const CASES: readonly Case[] = [
  {
    name: "stateless (iptables, host rules as forwarding)",
    syntax: "iptables",
    text: swap(corpus("stateless.rules"), "INPUT", "FORWARD"),
    capture: webTraffic,
    expectEmpty: true,
  },
  {
    name: "stateless (nft)",
    syntax: "nft",
    text: swap(corpus("stateless.nft.json"), "input", "forward"),
    capture: webTraffic,
    expectEmpty: true,
  },
  {
    name: "web server with SSH (iptables)",
    syntax: "iptables",
    text: swap(corpus("webserver-ssh.rules"), "INPUT", "FORWARD"),
    capture: webTraffic,
  },
  {
    name: "web server with SSH (nft)",
    syntax: "nft",
    text: swap(corpus("webserver-ssh.nft.json"), "input", "forward"),
    capture: webTraffic,
  },
  {
    name: "NAT gateway, MASQUERADE (iptables)",
    syntax: "iptables",
    text: ifaces(corpus("nat-gateway.rules"), { eth1: "r0", eth0: "sink0" }),
    capture: masqueradeTraffic,
    randomPorts: true,
  },
  {
    name: "NAT gateway, MASQUERADE (nft)",
    syntax: "nft",
    text: ifaces(corpus("nat-gateway.nft.json"), { eth1: "r0", eth0: "sink0" }),
    capture: masqueradeTraffic,
    randomPorts: true,
  },
  {
    name: "NAT gateway, port forwards (iptables)",
    syntax: "iptables",
    text: ifaces(corpus("nat-gateway.rules"), { eth0: "r0", eth1: "sink0" }),
    capture: portForwardTraffic,
  },
  {
    name: "DNS server with NOTRACK (iptables)",
    syntax: "iptables",
    text: swap(corpus("dns-notrack.rules"), "INPUT", "FORWARD"),
    capture: dnsTraffic,
  },
  {
    name: "DNS server with NOTRACK (nft)",
    syntax: "nft",
    text: swap(corpus("dns-notrack.nft.json"), "input", "forward"),
    capture: dnsTraffic,
  },
  {
    name: "Docker port map",
    syntax: "iptables",
    text: ifaces(corpus("docker.rules"), { docker0: "sink0" }),
    capture: (c) => {
      c.tcp({ c: C1, cp: 51000, s: PUBLIC, sp: 8080, from: ["172.17.0.2", 80] }, "S SA< A PA:80 PA<:700 A");
      // Not to the router's own address: its INPUT accepts, and its stack would answer with a RST.
      c.tcp({ c: C2, cp: 51001, s: "203.0.113.77", sp: 9090 }, "S");
      c.tcp({ c: "172.17.0.5", cp: 51002, s: C1, sp: 443 }, "S");
    },
  },
  {
    name: "kube-proxy services (statistic nth for random)",
    syntax: "iptables",
    text: corpus("kube-proxy.rules").replace("--mode random --probability 0.50000000000", "--mode nth --every 2 --packet 0"),
    capture: (c) => {
      // Pod clients: DNAT only (not masqueraded), with replies from the endpoints.
      c.udp("10.244.2.9", 40000, "10.96.0.10", 53, 40);
      c.udp("10.244.0.2", 53, "10.244.2.9", 40000, 90);
      c.udp("10.244.2.9", 40001, "10.96.0.10", 53, 40);
      c.udp("10.244.0.3", 53, "10.244.2.9", 40001, 90);
      c.tcp({ c: "10.244.2.9", cp: 40002, s: "10.96.0.1", sp: 443, from: ["192.168.0.10", 6443] }, "S SA< A");
      c.tcp({ c: "10.244.2.9", cp: 40003, s: "10.96.100.7", sp: 80, from: ["10.244.1.5", 8080] }, "S SA< A PA:50");
      // Outside clients are masqueraded with --random-fully: first packets only.
      c.tcp({ c: C1, cp: 40004, s: "10.96.100.7", sp: 80 }, "S");
      c.tcp({ c: C1, cp: 40005, s: PUBLIC, sp: 30080 }, "S");
      c.tcp({ c: C2, cp: 40006, s: "10.96.0.99", sp: 80 }, "S");
    },
    randomPorts: true,
  },
  {
    name: "every supported match and target, IPv4 (iptables)",
    syntax: "iptables",
    text: ifaces(corpus("all-matches.v4.rules"), { eth0: "sink0", eth1: "r0" }),
    capture: (c) => {
      webTraffic(c);
      c.tcp({ c: C1, cp: 42000, s: "203.0.113.10", sp: 8080 }, "S");
      c.udp(C2, 42001, C1, 5005, 20);
      c.tcp({ c: "10.1.2.3", cp: 42002, s: C1, sp: 80 }, "S");
    },
    randomPorts: true,
  },
  {
    name: "every supported match and target, IPv6 (ip6tables)",
    syntax: "ip6tables",
    ignoreChains: ["OUTPUT", "POSTROUTING"],
    text: corpus("all-matches.v6.rules"),
    capture: (c) => {
      c.tcp({ c: "2001:db8:5::7", cp: 43000, s: "2001:db8::10", sp: 8080 }, "S");
      c.udp("2001:db8:5::7", 43001, "2001:db8::53", 53, 30);
      c.tcp({ c: "2001:db8:5::8", cp: 43002, s: "2001:db8::80", sp: 80 }, "S A");
      c.ping("2001:db8:5::7", "2001:db8::1", 5);
    },
  },
  {
    name: "inet NAT for IPv4 and IPv6, nft text",
    syntax: "nft-text",
    text: [
      "table inet nat {",
      "\tchain post {",
      "\t\ttype nat hook postrouting priority srcnat; policy accept;",
      '\t\toifname "sink0" masquerade',
      "\t}",
      "}",
      "table inet f {",
      "\tchain forward {",
      "\t\ttype filter hook forward priority filter; policy drop;",
      "\t\tct state established,related counter accept",
      '\t\tiifname "r0" tcp dport 443 counter accept',
      '\t\tiifname "r0" meta l4proto ipv6-icmp counter accept',
      "\t}",
      "}",
      "",
    ].join("\n"),
    capture: (c) => {
      c.tcp({ c: "2001:db8:10::5", cp: 40000, s: "2001:db8:20::7", sp: 443, back: [PUBLIC6, 40000] }, "S SA< A PA:100 PA<:400 A");
      c.tcp({ c: "192.168.10.5", cp: 40001, s: C1, sp: 443, back: [PUBLIC, 40001] }, "S SA< A");
      c.ping("2001:db8:10::5", "2001:db8:20::7", 42, { src: "2001:db8:20::7", dst: PUBLIC6 });
      c.tcp({ c: "2001:db8:10::6", cp: 40002, s: "2001:db8:20::7", sp: 80 }, "S");
    },
  },
  {
    // A real ruleset: test/firewall/corpus/kube-proxy-nftables.nft (kubernetes' own test fixture).
    name: "kube-proxy nftables mode (fib, numgen, affinity set updates; nft text)",
    syntax: "nft-text",
    text: readFileSync(fileURLToPath(new URL("../../../test/firewall/corpus/kube-proxy-nftables.nft", import.meta.url)), "utf8"),
    capture: (c) => {
      // Pod to ClusterIP: DNAT through numgen mod 1, no masquerade.
      c.tcp({ c: "10.0.0.5", cp: 41000, s: "172.30.0.41", sp: 80, from: ["10.180.0.1", 80] }, "S SA< A PA:60 PA<:300 A");
      // Session affinity: the first connection updates @affinity-…, the second is sent by it.
      c.tcp({ c: "10.0.0.6", cp: 41001, s: "172.30.0.45", sp: 80, from: ["10.180.0.3", 80] }, "S SA< A");
      c.tcp({ c: "10.0.0.6", cp: 41002, s: "172.30.0.45", sp: 80, from: ["10.180.0.3", 80] }, "S SA< A");
      // External IP of a Local service without local endpoints: fib saddr type local misses, dropped as no-endpoint.
      c.tcp({ c: C1, cp: 41003, s: "192.168.99.22", sp: 80 }, "S");
      // Unallocated ClusterIP: dropped by cluster-ips-check.
      c.tcp({ c: "10.0.0.7", cp: 41004, s: "172.30.0.50", sp: 80 }, "S");
      // NodePort from outside: marked, DNATed and masqueraded fully-random.
      c.tcp({ c: C2, cp: 41005, s: "192.168.0.2", sp: 3003 }, "S");
    },
    randomPorts: true,
  },
  // ---- Real rulesets (test/firewall/corpus/SOURCES.md): interface names mapped onto r0/sink0 only.
  {
    name: "Docker nftables backend, published port (real: moby nftablesdoc usernet-portmap; bridge1 = sink0)",
    syntax: "nft-text",
    text: ifaces(dockerNft(), { bridge1: "sink0" }),
    capture: (c) => {
      // To the host's port 8080 (fib daddr type local): DNAT to the container, through filter-forward-in__bridge1.
      c.tcp({ c: C1, cp: 52000, s: PUBLIC, sp: 8080, from: ["192.0.2.2", 80] }, "S SA< A PA:80 PA<:700 A FA FA< A");
      // Straight at the container from outside: dropped in raw-PREROUTING, never tracked.
      c.tcp({ c: C2, cp: 52001, s: "192.0.2.2", sp: 80 }, "S S");
      // An unpublished container port: UNPUBLISHED PORT DROP; not local, so no DNAT either.
      c.tcp({ c: C2, cp: 52002, s: "192.0.2.3", sp: 22 }, "S");
      // To another address of the bridge's subnet: forwarded to bridge1, no published port, dropped.
      c.udp(C1, 52003, "192.0.2.9", 53, 30);
    },
  },
  {
    name: "Docker nftables backend, containers going out (real: moby nftablesdoc usernet-portmap; bridge1 = r0)",
    syntax: "nft-text",
    text: ifaces(dockerNft(), { bridge1: "r0" }),
    capture: (c) => {
      c.tcp({ c: "192.0.2.2", cp: 53000, s: C1, sp: 443, back: [PUBLIC, 53000] }, "S SA< A PA:200 PA<:1200 A");
      c.udp("192.0.2.3", 53001, C2, 53, 30);
      c.udp(C2, 53, PUBLIC, 53001, 90);
      c.ping("192.0.2.4", C1, 77, { src: C1, dst: PUBLIC });
      // More containers going out, and a source outside the bridge's subnet (OUTGOING, but no masquerade).
      c.tcp({ c: "192.0.2.2", cp: 53002, s: "198.18.5.5", sp: 80 }, "S");
      c.tcp({ c: "10.99.0.1", cp: 53003, s: C1, sp: 80 }, "S");
    },
    randomPorts: true,
  },
  {
    name: "Docker iptables backend, published port (real: moby iptablesdoc usernet-portmap, with its ipset; bridge1 = sink0)",
    syntax: "iptables",
    text: ifaces(real("docker-iptables.rules"), { bridge1: "sink0" }),
    ipsets: real("docker-iptables.ipsets"),
    capture: (c) => {
      c.tcp({ c: C1, cp: 54000, s: PUBLIC, sp: 8080, from: ["192.0.2.2", 80] }, "S SA< A PA:80 PA<:700 A FA FA< A");
      c.tcp({ c: C2, cp: 54001, s: "192.0.2.3", sp: 22 }, "S");
      c.tcp({ c: C2, cp: 54002, s: "198.18.0.9", sp: 80 }, "S SA< A");
      c.udp(C1, 54003, "192.0.2.9", 53, 30);
    },
  },
  {
    name: "Docker iptables backend, containers going out (real: moby iptablesdoc usernet-portmap; bridge1 = r0)",
    syntax: "iptables",
    text: ifaces(real("docker-iptables.rules"), { bridge1: "r0" }),
    ipsets: real("docker-iptables.ipsets"),
    capture: (c) => {
      c.tcp({ c: "192.0.2.2", cp: 55000, s: C1, sp: 443, back: [PUBLIC, 55000] }, "S SA< A PA:200 PA<:1200 A");
      c.udp("192.0.2.3", 55001, C2, 53, 30);
      c.udp(C2, 53, PUBLIC, 55001, 90);
      c.tcp({ c: "10.99.0.1", cp: 55002, s: C1, sp: 80 }, "S");
    },
    randomPorts: true,
  },
  {
    name: "OpenWrt fw4 default ruleset (real: firewall4 tests/01_configuration/01_ruleset; br-lan = r0, pppoe-wan = sink0)",
    syntax: "nft-text",
    text: ifaces(real("openwrt-fw4-default.nft"), { "br-lan": "r0", "pppoe-wan": "sink0" }),
    // output_wan jumps to accept_to_wan, which forwarded traffic counts in too.
    quietRouter: true,
    capture: (c) => {
      // lan to wan: masqueraded, MSS clamped (tcp option maxseg size set rt mtu), the SYN rate limit not reached.
      c.tcp({ c: "192.168.26.5", cp: 56000, s: C1, sp: 443, back: [PUBLIC, 56000] }, "S SA< A PA:300 PA<:1400 A FA FA< A");
      c.udp("192.168.26.6", 56001, C2, 53, 30);
      c.udp(C2, 53, PUBLIC, 56001, 80);
      c.ping("192.168.26.7", C1, 31, { src: C1, dst: PUBLIC });
      // wan to lan: not forwarded (forward_wan: no rule for it), rejected by handle_reject.
      c.tcp({ c: C2, cp: 56002, s: "192.168.26.5", sp: 22 }, "S");
      c.udp(C2, 56003, "192.168.26.5", 5000, 20);
      // IPsec ESP and ISAKMP from wan are let in to lan by the default rules.
      c.udp(C1, 500, "192.168.26.9", 500, 100);
    },
    randomPorts: true,
  },
  {
    name: "SNAT and DNAT address ranges (jhash2 choice)",
    syntax: "iptables",
    text: [
      "*nat",
      ":PREROUTING ACCEPT [0:0]",
      ":INPUT ACCEPT [0:0]",
      ":OUTPUT ACCEPT [0:0]",
      ":POSTROUTING ACCEPT [0:0]",
      "-A PREROUTING -d 203.0.113.50/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.50.0.1-10.50.0.9",
      "-A POSTROUTING -s 10.9.0.0/16 -j SNAT --to-source 203.0.113.100-203.0.113.120",
      "-A POSTROUTING -s 10.8.0.0/16 -j SNAT --to-source 203.0.113.100-203.0.113.120 --persistent",
      "-A POSTROUTING -s 10.7.0.0/16 -p tcp -j SNAT --to-source 203.0.113.130:2000-2999",
      "COMMIT",
      "*filter",
      ":INPUT ACCEPT [0:0]",
      ":FORWARD DROP [0:0]",
      ":OUTPUT ACCEPT [0:0]",
      "-A FORWARD -m conntrack --ctstate NEW,RELATED,ESTABLISHED -j ACCEPT",
      "COMMIT",
      "",
    ].join("\n"),
    capture: (c) => {
      for (let i = 1; i <= 12; i++) {
        const cl = `10.9.${i}.${i * 7}`;
        c.tcp({ c: cl, cp: 40000 + i, s: C1, sp: 443 }, "S");
      }
      for (let i = 1; i <= 6; i++) c.udp(`10.8.${i}.1`, 45000, C2, 53, 30);
      for (let i = 1; i <= 4; i++) c.tcp({ c: `10.7.0.${i}`, cp: 46000, s: C1, sp: 80 }, "S");
      for (let i = 1; i <= 8; i++) c.tcp({ c: `198.51.100.${20 + i}`, cp: 47000 + i, s: "203.0.113.50", sp: 80 }, "S");
    },
    randomPorts: true,
  },
];

// ---------------------------------------------------------------------------
// Running both sides

/** The router's addresses and single-link interfaces, as ctlab's host model. */
function routerHost(): HostModel {
  const a = (iface: string, w: number) => ({ iface, family: 4 as const, words: Uint32Array.of(w, 0, 0, 0), prefixLen: 32 });
  const v6 = { iface: "sink0", family: 6 as const, words: Uint32Array.of(0x20010db8, 0xffff0000, 0, 1), prefixLen: 128 };
  return new HostModel({ addrs: [a("r0", 0xc00002fe), a("sink0", 0xcb007101), v6], iif: "r0", oif: "sink0", defaultIface: "sink0" });
}

function parseSide(c: Case, text: string, file: string): Ruleset {
  if (c.syntax === "nft-text" && !text.trimStart().startsWith("{")) return parseNftJson(convertNftText(text, { file }), { file });
  if (c.syntax === "nft" || c.syntax === "nft-text") return parseNftJson(text, { file });
  return parseIptables(text, {
    file,
    family: c.syntax === "ip6tables" ? "ip6" : "ip",
    ...(c.ipsets !== undefined ? { ipsets: parseIpsetSave(c.ipsets) } : {}),
  });
}

/** Masks reply ports the kernel chose at random: a reply dport that is not the original sport. */
function maskRandomPort(line: string): string {
  const first = line.indexOf(" src=");
  const second = line.indexOf(" src=", first + 1);
  if (first < 0 || second < 0) return line;
  const sport = /sport=(\d+)/.exec(line.slice(first, second))?.[1];
  const replyPart = line.slice(second).replace(/dport=(\d+)/, (m, p: string) => (p === sport ? m : "dport=*"));
  return line.slice(0, second) + replyPart;
}

interface CaseResult {
  name: string;
  identical: boolean;
  report: string;
  kernelEntries: number;
  ctlabEntries: number;
}

async function kernelSide(
  c: Case,
  pcap: string,
  records: ReturnType<typeof scenarioIpRecords> extends Iterable<infer R> ? R[] : never,
  dir: string,
): Promise<{ k: KernelResult; saved: string }> {
  return withKernelLock(() =>
    withTopology(async (t) => {
      const stats = reframe(records, t.r0Mac, pcap);
      await run("ip", ["-n", t.rtNs, "addr", "add", `${PUBLIC}/32`, "dev", "sink0"]);
      await run("ip", ["-n", t.rtNs, "-6", "addr", "add", `${PUBLIC6}/128`, "dev", "sink0", "nodad"]);
      if (c.ipsets !== undefined) {
        const r = spawnSync("ip", ["netns", "exec", t.rtNs, "ipset", "restore"], { input: c.ipsets, encoding: "utf8" });
        if (r.status !== 0) throw new Error(`Restoring the ipsets failed: ${(r.stderr || String(r.error)).trim()}`);
      }
      if (c.syntax === "nft" || c.syntax === "nft-text") {
        const f = join(dir, c.syntax === "nft" ? "ruleset.json" : "ruleset.nft");
        writeFileSync(f, c.text);
        await run("nft", [...(c.syntax === "nft" ? ["-j"] : []), "-f", f], { ns: t.rtNs });
      } else {
        const tool = c.syntax === "ip6tables" ? "ip6tables-restore" : "iptables-restore";
        const r = spawnSync("ip", ["netns", "exec", t.rtNs, tool], { input: c.text, encoding: "utf8" });
        if (r.status !== 0) throw new Error(`Loading the ruleset with ${tool} failed: ${(r.stderr || String(r.error)).trim()}`);
      }
      await loadRuleset(t, INGRESS_COUNTER);
      if (c.quietRouter === true) await loadRuleset(t, QUIET_ROUTER);
      const k = await injectCapture(t, pcap, { frames: stats.written });
      const saved =
        c.syntax === "nft" || c.syntax === "nft-text"
          ? (await run("nft", ["-j", "list", "ruleset"], { ns: t.rtNs })).stdout
          : (await run(c.syntax === "ip6tables" ? "ip6tables-save" : "iptables-save", ["-c"], { ns: t.rtNs })).stdout;
      return { k, saved };
    }),
  );
}

async function ctlabSide(c: Case, pcap: string): Promise<{ observed: Observed; ruleset: Ruleset }> {
  const ruleset = parseSide(c, c.text, c.name);
  // As iptables-restore without -c: the file's counters are not loaded.
  resetCounters(ruleset);
  const events: string[] = [];
  const r = await replay(pcap, {
    clock: "frozen",
    sysctls: { nf_conntrack_checksum: 0 },
    onEvent: (l) => events.push(l),
    firewall: { ruleset, host: routerHost() },
  });
  const stats: Record<string, number> = {};
  for (const [k, v] of r.tracker.stats.entries()) stats[k] = v;
  const mask = c.randomPorts === true ? maskRandomPort : (l: string) => l;
  return {
    observed: {
      table: r.tracker.formatTable({ extended: true }).map(mask),
      events: events.map((l) => parseEventLine(mask(l))),
      stats,
      count: r.tracker.count,
      ctState: zeroStates(),
      groups: new Map(),
    },
    ruleset,
  };
}

const skip = kernelSkipReason();

describe("kernel: firewall rulesets", { skip: skip ?? false }, () => {
  const results: CaseResult[] = [];
  let scratch: { dir: string; remove: () => void } | undefined;

  before(() => {
    scratch = scratchDir();
  });

  after(() => {
    scratch?.remove();
    const same = results.filter((r) => r.identical).length;
    process.stderr.write(`firewall kernel agreement: ${same}/${results.length} rulesets identical\n`);
    for (const r of results)
      process.stderr.write(`  ${r.identical ? "identical" : "DIFFERENT"}  ${r.name} (kernel ${r.kernelEntries} entries, ctlab ${r.ctlabEntries})\n`);
  });

  for (const c of CASES) {
    it(c.name, async () => {
      const dir = scratch!.dir;
      const cap = new Cap();
      c.capture(cap);
      const records = [...scenarioIpRecords(cap.frames)];
      const pcap = join(dir, "capture.pcap");
      const { k, saved } = await kernelSide(c, pcap, records, dir);
      const mine = await ctlabSide(c, pcap);
      const mask = c.randomPorts === true ? maskRandomPort : (l: string) => l;
      const kObs = observedFromKernel({
        ...k,
        table: k.table.map(mask),
        events: k.events.map((e) => ({ kind: e.kind, line: mask(e.line) })),
        ctState: zeroStates(),
        groups: new Map(),
      });
      const cmp = compareObserved(kObs, mine.observed);
      const kernelRs = parseSide({ ...c, syntax: c.syntax === "nft-text" ? "nft" : c.syntax }, saved, "kernel");
      const nftLike = c.syntax === "nft" || c.syntax === "nft-text";
      const counterDiffs = compareCounters(mine.ruleset, kernelRs, { policies: !nftLike, countedOnly: nftLike }).filter(
        (d) => !(c.ignoreChains ?? []).some((name) => d.where.split(" ")[2] === name),
      );
      const identical = cmp.identical && counterDiffs.length === 0;
      const report = [
        cmp.identical ? "" : `table/events/stats:\n${formatDifferences(cmp.differences)}`,
        counterDiffs.length === 0
          ? ""
          : `counters (ctlab vs kernel):\n${counterDiffs
              .slice(0, 20)
              .map((d) => `  - ${d.where} ${d.text}: ctlab ${d.expected.packets}/${d.expected.bytes}, kernel ${d.actual.packets}/${d.actual.bytes}`)
              .join("\n")}`,
      ]
        .filter(Boolean)
        .join("\n");
      results.push({ name: c.name, identical, report, kernelEntries: k.table.length, ctlabEntries: mine.observed.table.length });
      if (c.expectEmpty === true) {
        assert.equal(k.table.length, 0, `the kernel tracked with a stateless ruleset:\n${k.table.join("\n")}`);
        assert.equal(mine.observed.table.length, 0, `ctlab tracked with a stateless ruleset:\n${mine.observed.table.join("\n")}`);
      }
      assert.ok(identical, `${c.name}: ctlab and the kernel differ\n${report}`);
    });
  }
});
