/**
 * Namespaces for the host tests (names start with "host-"): a router
 * namespace where conntrack runs and an injector namespace that sends frames
 * written by the simulator's frame writer (src/sim/frames.ts) through it, as the kernel harness does
 * (test/kernel/netns.ts). Everything is deleted in `finally`.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseIp } from "../../src/packet/addr.js";
import { FrameWriter, NO_OPTIONS, TCP_ACK, TCP_SYN } from "../../src/sim/frames.js";
import { PcapSink } from "../../src/sim/sink.js";
import { run, setSysctls, withKernelLock } from "../kernel/netns.js";

export interface HostTopology {
  readonly rt: string;
  readonly inj: string;
  readonly r0Mac: string;
}

let seq = 0;

async function deleteNs(name: string): Promise<void> {
  await run("ip", ["netns", "del", name], { allowFail: true });
}

/** Deletes host- namespaces of dead test processes. */
async function cleanLeftovers(): Promise<void> {
  const out = await run("ip", ["netns", "list"], { allowFail: true });
  for (const line of out.stdout.split("\n")) {
    const name = line.split(/\s+/)[0] ?? "";
    const m = /^host-(\d+)-/.exec(name);
    if (m === null) continue;
    const pid = Number(m[1]);
    let alive = false;
    try {
      process.kill(pid, 0);
      alive = true;
    } catch (e) {
      alive = (e as NodeJS.ErrnoException).code === "EPERM";
    }
    if (!alive) await deleteNs(name);
  }
}

/** Runs `fn` with a fresh router/injector pair, under the kernel lock. */
export async function withHostTopology<T>(ruleset: string, fn: (t: HostTopology) => Promise<T>): Promise<T> {
  return withKernelLock(async () => {
    await cleanLeftovers();
    const id = `${process.pid}-${seq++}`;
    const t = { rt: `host-${id}-r`, inj: `host-${id}-i`, r0Mac: "" };
    try {
      await run("ip", ["netns", "add", t.inj]);
      await run("ip", ["netns", "add", t.rt]);
      await run("ip", ["link", "add", "inj0", "netns", t.inj, "type", "veth", "peer", "name", "r0", "netns", t.rt]);
      await run("ip", ["link", "add", "sinkpeer", "netns", t.inj, "type", "veth", "peer", "name", "sink0", "netns", t.rt]);
      await setSysctls(t.inj, { "net.ipv6.conf.all.disable_ipv6": 1, "net.ipv6.conf.default.disable_ipv6": 1 });
      await setSysctls(t.rt, {
        "net.ipv4.ip_forward": 1,
        "net.ipv4.conf.all.rp_filter": 0,
        "net.ipv4.conf.default.rp_filter": 0,
        "net.ipv4.conf.all.send_redirects": 0,
        "net.ipv4.conf.default.send_redirects": 0,
        "net.ipv6.conf.all.disable_ipv6": 1,
        "net.ipv6.conf.default.disable_ipv6": 1,
      });
      for (const [ns, dev] of [
        [t.inj, "inj0"],
        [t.inj, "sinkpeer"],
        [t.rt, "r0"],
        [t.rt, "sink0"],
      ] as const) {
        await run("ip", ["-n", ns, "link", "set", dev, "up"]);
      }
      await setSysctls(t.rt, { "net.ipv4.conf.r0.rp_filter": 0, "net.ipv4.conf.sink0.rp_filter": 0, "net.ipv4.conf.r0.send_redirects": 0 });
      await run("ip", ["-n", t.rt, "addr", "add", "192.0.2.254/32", "dev", "r0"]);
      await run("ip", ["-n", t.rt, "route", "add", "default", "via", "192.0.2.1", "dev", "sink0", "onlink"]);
      await run("ip", ["-n", t.rt, "neigh", "add", "192.0.2.1", "lladdr", "02:00:00:00:00:01", "dev", "sink0", "nud", "permanent"]);
      await setSysctls(t.rt, { "net.netfilter.nf_conntrack_checksum": 0 });
      t.r0Mac = (await run("cat", ["/sys/class/net/r0/address"], { ns: t.rt })).stdout.trim();
      const r = spawnSync("ip", ["netns", "exec", t.rt, "nft", "-f", "-"], { input: ruleset, encoding: "utf8" });
      if (r.status !== 0) throw new Error(`Loading the nft ruleset failed: ${r.stderr.trim()}`);
      return await fn(t);
    } finally {
      await deleteNs(t.inj);
      await deleteNs(t.rt);
    }
  });
}

/** Sends a capture (a simulation's --write-pcap) into the router via inj0, its destination MAC rewritten to r0's. */
export async function injectPcap(t: HostTopology, pcap: string, frames: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "host-inject-"));
  try {
    const out = join(dir, "to-r0.pcap");
    await run("tcprewrite", [`--enet-dmac=${t.r0Mac}`, "-i", pcap, "-o", out]);
    const r = await run("tcpreplay", ["-q", "-K", "--pps", "20000", "-i", "inj0", out], { ns: t.inj, timeoutMs: 120_000, allowFail: true });
    const ok = /Successful packets:\s+(\d+)/.exec(r.stdout + r.stderr);
    if (ok === null || Number(ok[1]) !== frames) throw new Error(`tcpreplay sent "${ok?.[1] ?? "?"}" of ${frames} frames: ${r.stderr.trim()}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The traffic of known shape the host tests send: a SYN flood, idle established connections, DNS, a NAT'd LAN. */
export const RULESET = `
table inet filter {
  chain forward {
    type filter hook forward priority 0; policy accept;
    ct state established,related accept
    udp dport 53 accept
    tcp dport { 80, 443 } accept
  }
}
table ip nat {
  chain post {
    type nat hook postrouting priority 100; policy accept;
    ip saddr 10.40.0.0/24 oifname "sink0" snat to 192.0.2.254
  }
}
`;

export const SHAPE = { synFlood: 300, idle: 40, dns: 150, natLan: 20 } as const;

/** An IPv4 address as the frame writer takes it (a host-order u32). */
export function u32(a: string): number {
  const b = parseIp(a);
  return ((b[0] as number) * 2 ** 24 + (b[1] as number) * 2 ** 16 + (b[2] as number) * 256 + (b[3] as number)) >>> 0;
}

/**
 * The frames of SHAPE, written by the simulator's frame writer (src/sim, the
 * one traffic generator) into a pcap: what the table must show afterwards is
 * known from these counts. Returns the number of frames.
 */
export function writeShapedPcap(path: string): number {
  const w = new FrameWriter();
  const sink = new PcapSink(path);
  let us = 1_700_000_000_000_000;
  const put = (len: number): void => {
    sink.frame(us, w.buf, len);
    us += 1000;
  };
  // The packet builder's defaults, which the kernel tests' listings were taken with: window 65535, no TCP options.
  const tcp = (src: string, dst: string, sport: number, dport: number, flags: number, seq: number, ack = 0): void =>
    put(w.tcp(u32(src), u32(dst), sport, dport, seq, ack, flags, 65535, NO_OPTIONS, 0));
  for (let i = 0; i < SHAPE.synFlood; i++) tcp(`10.66.${Math.floor(i / 250)}.${(i % 250) + 1}`, "198.51.100.10", 1024 + i, 80, TCP_SYN, 1000 + i);
  for (let i = 0; i < SHAPE.idle; i++) {
    const c = `10.20.0.${i + 1}`;
    const s = "198.51.100.20";
    const sport = 40000 + i;
    tcp(c, s, sport, 443, TCP_SYN, 100);
    tcp(s, c, 443, sport, TCP_SYN | TCP_ACK, 500, 101);
    tcp(c, s, sport, 443, TCP_ACK, 101, 501);
  }
  for (let i = 0; i < SHAPE.dns; i++) put(w.udp(u32(`10.30.0.${(i % 200) + 1}`), u32("198.51.100.53"), 30000 + i, 53, 32));
  for (let i = 0; i < SHAPE.natLan; i++) tcp(`10.40.0.${i + 1}`, "203.0.113.5", 50000 + i, 80, TCP_SYN, 7);
  sink.close();
  return sink.frames;
}

/** Sends the frames of SHAPE into the router. */
export async function injectShaped(t: HostTopology): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "host-shaped-"));
  try {
    const pcap = join(dir, "shaped.pcap");
    await injectPcap(t, pcap, writeShapedPcap(pcap));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
