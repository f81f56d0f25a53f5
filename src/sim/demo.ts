/**
 * The built-in demo capture behind `npm start` / `ctlab demo`: two minutes of a
 * busy HTTPS and DNS server that a flaky link and a SYN flood push into a full
 * conntrack table. Deterministic for a given seed.
 */
import { buildIcmp, buildTcp, buildUdp } from "../packet/build.js";
import { PcapWriter } from "../packet/writer.js";

/** Knobs of the demo traffic; the defaults tell the story in about 60 000 packets. */
export interface DemoOptions {
  /** PRNG seed. Defaults to 1. */
  seed?: number;
  /** Capture start, seconds since the epoch. Defaults to 2026-11-25 09:00:00 UTC. */
  start?: number;
  /** Short HTTPS connections that close cleanly with FIN (end in TIME_WAIT). */
  shortConnections?: number;
  /** Connections that stay open to the end. */
  longConnections?: number;
  /** Connections whose closing RST/FIN was lost: the entries stay ESTABLISHED for five days. */
  lostCloses?: number;
  /** Spoofed SYNs of the flood. */
  floodSyns?: number;
  /** DNS queries (each answered). */
  dnsQueries?: number;
}

/** The sysctls the demo replays with: a table small enough for the flood to fill. */
export const DEMO_SYSCTLS: Readonly<Record<string, number>> = {
  nf_conntrack_max: 4096,
  nf_conntrack_buckets: 4096,
  nf_conntrack_checksum: 0,
};

interface Timed {
  t: number;
  frame: Uint8Array;
}

const SERVER = "203.0.113.10";
const DNS_SERVER = "203.0.113.53";

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Generates the demo packets in capture order.
 * @returns frames (Ethernet) with their capture times in seconds
 */
export function demoPackets(opts: DemoOptions = {}): Timed[] {
  const rnd = mulberry32(opts.seed ?? 1);
  const t0 = opts.start ?? Date.UTC(2026, 10, 25, 9, 0, 0) / 1000;
  const out: Timed[] = [];
  const u32 = () => Math.floor(rnd() * 0x100000000) >>> 0;
  let nextClient = 0;
  const client = () => {
    const n = nextClient++;
    return `198.51.${100 + ((n >> 8) % 4)}.${(n & 0xff) + 0}`;
  };
  let nextPort = 32768;
  const port = () => {
    nextPort = nextPort >= 60999 ? 32768 : nextPort + 1;
    return nextPort;
  };

  /** Handshake and one request/response; returns the sequence state for the caller to finish. */
  const open = (t: number, src: string, sport: number) => {
    const c = u32();
    const s = u32();
    const rtt = 0.002 + rnd() * 0.05;
    const p = { src, dst: SERVER, sport, dport: 443 };
    const r = { src: SERVER, dst: src, sport: 443, dport: sport };
    out.push({ t, frame: buildTcp({ ...p, flags: "S", seq: c, win: 64240, mss: 1460, wscale: 7, sackPerm: true }) });
    out.push({ t: t + rtt / 2, frame: buildTcp({ ...r, flags: "SA", seq: s, ack: c + 1, win: 65160, mss: 1460, wscale: 7, sackPerm: true }) });
    out.push({ t: t + rtt, frame: buildTcp({ ...p, flags: "A", seq: c + 1, ack: s + 1, win: 502 }) });
    out.push({ t: t + rtt + 0.0001, frame: buildTcp({ ...p, flags: "PA", seq: c + 1, ack: s + 1, win: 502, payload: 517 }) });
    out.push({ t: t + 1.5 * rtt, frame: buildTcp({ ...r, flags: "PA", seq: s + 1, ack: c + 518, win: 501, payload: 1400 }) });
    out.push({ t: t + 2 * rtt, frame: buildTcp({ ...p, flags: "A", seq: c + 518, ack: s + 1401, win: 502 }) });
    return { p, r, c: c + 518, s: s + 1401, rtt, t: t + 2 * rtt };
  };

  const shortN = opts.shortConnections ?? 2000;
  for (let i = 0; i < shortN; i++) {
    const t = t0 + rnd() * 100;
    const k = open(t, client(), port());
    const tf = k.t + 0.05 + rnd() * 2;
    out.push({ t: tf, frame: buildTcp({ ...k.p, flags: "FA", seq: k.c, ack: k.s, win: 502 }) });
    out.push({ t: tf + k.rtt / 2, frame: buildTcp({ ...k.r, flags: "FA", seq: k.s, ack: k.c + 1, win: 501 }) });
    out.push({ t: tf + k.rtt, frame: buildTcp({ ...k.p, flags: "A", seq: k.c + 1, ack: k.s + 1, win: 502 }) });
  }

  const longN = opts.longConnections ?? 300;
  for (let i = 0; i < longN; i++) {
    const k = open(t0 + rnd() * 10, client(), port());
    // Keep-alive traffic every ~20 s so the entries stay fresh.
    let c = k.c;
    let s = k.s;
    for (let t = k.t + 20; t < t0 + 115; t += 15 + rnd() * 10) {
      out.push({ t, frame: buildTcp({ ...k.p, flags: "PA", seq: c, ack: s, win: 502, payload: 64 }) });
      out.push({ t: t + k.rtt, frame: buildTcp({ ...k.r, flags: "PA", seq: s, ack: c + 64, win: 501, payload: 128 }) });
      c += 64;
      s += 128;
    }
  }

  // A flaky link eats the RSTs (or FINs) that would have closed these: conntrack
  // keeps them ESTABLISHED for nf_conntrack_tcp_timeout_established (5 days).
  const lostN = opts.lostCloses ?? 2500;
  for (let i = 0; i < lostN; i++) open(t0 + 5 + rnd() * 50, client(), port());

  const dnsN = opts.dnsQueries ?? 1000;
  for (let i = 0; i < dnsN; i++) {
    const t = t0 + rnd() * 110;
    const src = client();
    const sport = port();
    out.push({ t, frame: buildUdp({ src, dst: DNS_SERVER, sport, dport: 53, payload: 40 }) });
    out.push({ t: t + 0.001 + rnd() * 0.02, frame: buildUdp({ src: DNS_SERVER, dst: src, sport: 53, dport: sport, payload: 120 }) });
  }
  for (let i = 0; i < 20; i++) {
    const t = t0 + i * 5;
    out.push({ t, frame: buildIcmp({ src: "198.51.100.250", dst: SERVER, id: 4242, seq: i }) });
    out.push({ t: t + 0.001, frame: buildIcmp({ src: SERVER, dst: "198.51.100.250", type: 0, id: 4242, seq: i }) });
  }

  // The SYN flood: spoofed sources, never answered (the server's SYN/ACKs go to
  // addresses that do not exist), each one a SYN_SENT entry for 120 s.
  const floodN = opts.floodSyns ?? 20000;
  const floodStart = t0 + 70;
  for (let i = 0; i < floodN; i++) {
    const src = `${1 + Math.floor(rnd() * 222)}.${Math.floor(rnd() * 256)}.${Math.floor(rnd() * 256)}.${1 + Math.floor(rnd() * 254)}`;
    out.push({
      t: floodStart + (i * 10) / floodN,
      frame: buildTcp({ src, dst: SERVER, sport: 1024 + Math.floor(rnd() * 64000), dport: 443, flags: "S", seq: u32(), win: 1024 }),
    });
  }

  out.sort((a, b) => a.t - b.t);
  return out;
}

/**
 * Writes the demo capture as a classic microsecond pcap.
 * @returns the number of packets written
 */
export function writeDemoCapture(path: string, opts: DemoOptions = {}): number {
  const w = new PcapWriter(path);
  const pkts = demoPackets(opts);
  for (const { t, frame } of pkts) {
    const usec = Math.round(t * 1e6);
    w.writePacket(Math.floor(usec / 1e6), (usec % 1e6) * 1000, frame);
  }
  w.close();
  return pkts.length;
}
