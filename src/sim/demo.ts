/**
 * The built-in demo capture behind `npm start` / `ctlab demo`: two minutes of a
 * busy HTTPS and DNS server that a flaky link and a SYN flood push into a full
 * conntrack table. Deterministic for a given seed.
 */
import { buildIcmp, buildUdp } from "../packet/build.js";
import { PcapWriter } from "../packet/writer.js";
import { FrameLog, TcpConv } from "./conv.js";
import { Rng } from "./random.js";
import type { TimedFrame } from "./time.js";

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

const SERVER = "203.0.113.10";
const DNS_SERVER = "203.0.113.53";

/**
 * Generates the demo packets in capture order.
 * @returns Ethernet frames with their capture times
 */
export function demoPackets(opts: DemoOptions = {}): TimedFrame[] {
  const rnd = new Rng(opts.seed ?? 1);
  const t0 = opts.start ?? Date.UTC(2026, 10, 25, 9, 0, 0) / 1000;
  // Frames are emitted story by story and sorted at the end by their time in
  // seconds (as drawn, before rounding to the microsecond, so that frames in
  // the same microsecond keep the order the story draws them in).
  const log = new FrameLog(0);
  const times: number[] = [];
  const at = (t: number) => {
    times.push(t);
    return log.at(t);
  };
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

  /** Handshake and one request/response; returns the conversation for the caller to finish. */
  const open = (t: number, src: string, cport: number) => {
    const conv = new TcpConv(log, {
      client: src,
      server: SERVER,
      cport,
      sport: 443,
      isnC: rnd.u32(),
      isnS: rnd.u32(),
      wscaleC: 7,
      wscaleS: 7,
      sackC: true,
      sackS: true,
    });
    const rtt = 0.002 + rnd.next() * 0.05;
    at(t);
    conv.syn("c");
    at(t + rtt / 2);
    conv.synack("s");
    at(t + rtt);
    conv.ack("c", { win: 502 });
    at(t + rtt + 0.0001);
    conv.data("c", 517, { win: 502 });
    at(t + 1.5 * rtt);
    conv.data("s", 1400, { win: 501 });
    at(t + 2 * rtt);
    conv.ack("c", { win: 502 });
    return { conv, rtt, t: t + 2 * rtt };
  };

  const shortN = opts.shortConnections ?? 2000;
  for (let i = 0; i < shortN; i++) {
    const t = t0 + rnd.next() * 100;
    const k = open(t, client(), port());
    const tf = k.t + 0.05 + rnd.next() * 2;
    at(tf);
    k.conv.fin("c", { win: 502 });
    at(tf + k.rtt / 2);
    k.conv.fin("s", { win: 501 });
    at(tf + k.rtt);
    k.conv.ack("c", { win: 502 });
  }

  const longN = opts.longConnections ?? 300;
  for (let i = 0; i < longN; i++) {
    const k = open(t0 + rnd.next() * 10, client(), port());
    // Keep-alive traffic every ~20 s so the entries stay fresh.
    for (let t = k.t + 20; t < t0 + 115; t += 15 + rnd.next() * 10) {
      at(t);
      k.conv.data("c", 64, { win: 502 });
      at(t + k.rtt);
      k.conv.data("s", 128, { win: 501 });
    }
  }

  // A flaky link eats the RSTs (or FINs) that would have closed these: conntrack
  // keeps them ESTABLISHED for nf_conntrack_tcp_timeout_established (5 days).
  const lostN = opts.lostCloses ?? 2500;
  for (let i = 0; i < lostN; i++) open(t0 + 5 + rnd.next() * 50, client(), port());

  const dnsN = opts.dnsQueries ?? 1000;
  for (let i = 0; i < dnsN; i++) {
    const t = t0 + rnd.next() * 110;
    const src = client();
    const sport = port();
    at(t).emit(buildUdp({ src, dst: DNS_SERVER, sport, dport: 53, payload: 40 }));
    at(t + 0.001 + rnd.next() * 0.02).emit(buildUdp({ src: DNS_SERVER, dst: src, sport: 53, dport: sport, payload: 120 }));
  }
  for (let i = 0; i < 20; i++) {
    const t = t0 + i * 5;
    at(t).emit(buildIcmp({ src: "198.51.100.250", dst: SERVER, id: 4242, seq: i }));
    at(t + 0.001).emit(buildIcmp({ src: SERVER, dst: "198.51.100.250", type: 0, id: 4242, seq: i }));
  }

  // The SYN flood: spoofed sources, never answered (the server's SYN/ACKs go to
  // addresses that do not exist), each one a SYN_SENT entry for 120 s.
  const floodN = opts.floodSyns ?? 20000;
  const floodStart = t0 + 70;
  for (let i = 0; i < floodN; i++) {
    const src = `${1 + rnd.below(222)}.${rnd.below(256)}.${rnd.below(256)}.${1 + rnd.below(254)}`;
    const cport = 1024 + rnd.below(64000);
    at(floodStart + (i * 10) / floodN);
    new TcpConv(log, { client: src, server: SERVER, cport, sport: 443, isnC: rnd.u32(), winC: 1024 }).syn("c", { bare: true });
  }

  const order = times.map((_, i) => i);
  order.sort((a, b) => (times[a] as number) - (times[b] as number));
  return order.map((i) => log.frames[i] as TimedFrame);
}

/**
 * Writes the demo capture as a classic microsecond pcap.
 * @returns the number of packets written
 */
export function writeDemoCapture(path: string, opts: DemoOptions = {}): number {
  const w = new PcapWriter(path);
  const pkts = demoPackets(opts);
  for (const { tsSec, tsNsec, frame } of pkts) w.writePacket(tsSec, tsNsec, frame);
  w.close();
  return pkts.length;
}
