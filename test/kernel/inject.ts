/**
 * Re-framing captures for injection, and one-call kernel runs.
 *
 * Re-framing turns every IP packet of a capture into an Ethernet frame
 * addressed to r0, so the router namespace forwards it. Packets the kernel
 * would discard before or around conntrack for reasons that have nothing to
 * do with conntrack (routing martians, multicast that is not forwarded,
 * loopback, truncated IP headers) are left out and counted — the same
 * re-framed file is what ctlab replays, so both sides see identical input.
 *
 * What is changed in a kept packet: link layer → Ethernet (VLAN/PPPoE/SLL/…
 * gone), Ethernet padding and trailers dropped (the IP length decides),
 * TTL/hop limit ≤ 1 raised to 64 (a forwarded packet with TTL ≤ 1 is dropped
 * before confirmation), IPv4 header checksum recomputed when it was right or
 * 0 (the capturing host's offload artefact: the wire carried the right one),
 * kept wrong when it was wrong (ip_rcv drops it before PREROUTING, and so
 * does ctlab's decoder).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { locateIp } from "../../src/packet/build.js";
import { finishChecksum, ipv4HeaderChecksumOk, onesSum } from "../../src/packet/checksum.js";
import { CaptureParser } from "../../src/packet/capture.js";
import { DECODE_FLAG, decodeFrame, decodeReasonName } from "../../src/packet/decode.js";
import { PcapWriter } from "../../src/packet/writer.js";
import type { TimedFrame } from "../scenarios/types.js";
import { DEFAULT_PPS, EventsLostError, injectCapture } from "./kernel-run.js";
import type { KernelResult } from "./kernel-run.js";
import type { CounterGroup, GlobalLimits } from "./netns.js";
import { countingRuleset, loadRuleset, ROUTER_V4, withGlobalLimits, withKernelLock, withTopology } from "./netns.js";

/** One IP packet to re-frame (the bytes from the IP header on). */
export interface IpRecord {
  tsSec: number;
  tsNsec: number;
  ip: Uint8Array;
}

export interface ReframeStats {
  /** Records offered. */
  records: number;
  /** Frames written. */
  written: number;
  /** Records left out, by reason. */
  skipped: Record<string, number>;
  /** Packets whose TTL / hop limit was raised. */
  ttlRaised: number;
  /** Packets whose loopback / link-local addresses were remapped. */
  remapped: number;
  /** IPv4 packets injected with their wrong header checksum (both sides drop them). */
  badHeaderChecksum: number;
}

/** Largest IP packet that fits the 65535 MTU of the veths. */
const MAX_IP = 65535;

function v4Addr(b: Uint8Array, o: number): number {
  return (((b[o] as number) << 24) | ((b[o + 1] as number) << 16) | ((b[o + 2] as number) << 8) | (b[o + 3] as number)) >>> 0;
}

const ROUTER_V4_NUM = ROUTER_V4.split(".").reduce((a, x) => ((a << 8) | Number(x)) >>> 0, 0);

/** Why the router would not forward (or would itself answer) a packet with this IPv4 address. */
function v4Unroutable(a: number, isDst: boolean): string | undefined {
  const first = a >>> 24;
  if (first === 0) return "v4 zero network";
  if (first === 127) return "v4 loopback";
  if (first >= 224 && first < 240) return "v4 multicast";
  if (first >= 240) return "v4 reserved/broadcast";
  if (isDst && a === ROUTER_V4_NUM) return "v4 router address";
  return undefined;
}

function v6Unroutable(b: Uint8Array, o: number): string | undefined {
  const b0 = b[o] as number;
  const b1 = b[o + 1] as number;
  if (b0 === 0xff) return "v6 multicast";
  if (b0 === 0xfe && (b1 & 0xc0) === 0x80) return "v6 link-local";
  let zeroTo10 = true;
  for (let i = 0; i < 10; i++) if (b[o + i] !== 0) zeroTo10 = false;
  if (zeroTo10) {
    if (b[o + 10] === 0xff && b[o + 11] === 0xff) return "v6 v4-mapped";
    if (b[o + 10] === 0 && b[o + 11] === 0 && b[o + 12] === 0 && b[o + 13] === 0 && b[o + 14] === 0) {
      if (b[o + 15] === 0) return "v6 unspecified";
      if (b[o + 15] === 1) return "v6 loopback";
    }
  }
  return undefined;
}

/**
 * Loopback and link-local addresses are never forwarded, yet several
 * captures consist of nothing else (echo servers on 127.0.0.1, PPPoE
 * sessions between link-local addresses). They are moved to forwardable
 * ranges that no capture uses — 127.a.b.c → 198.(18 + a mod 2).b.c,
 * ::1 → fd7f::1, fe80::/10 → fd80::/10 — in the outer header and in the
 * packet quoted by an ICMP error. Transport checksums are not fixed: both
 * sides run with nf_conntrack_checksum=0.
 */
function remapV4(b: Uint8Array, o: number): boolean {
  if (b[o] !== 127) return false;
  b[o] = 198;
  b[o + 1] = 18 + ((b[o + 1] as number) & 1);
  return true;
}

function remapV6(b: Uint8Array, o: number): boolean {
  if (b[o] === 0xfe && ((b[o + 1] as number) & 0xc0) === 0x80) {
    b[o] = 0xfd;
    return true;
  }
  for (let i = 0; i < 15; i++) if (b[o + i] !== 0) return false;
  if (b[o + 15] !== 1) return false;
  b[o] = 0xfd;
  b[o + 1] = 0x7f;
  return true;
}

/** Remaps the addresses of an IP header at `o` (and, for an ICMP error, of the quoted header). */
function remapAddresses(b: Uint8Array, o: number, end: number, depth = 0): boolean {
  const v = (b[o] as number) >> 4;
  let changed = false;
  if (v === 4 && o + 20 <= end) {
    changed = remapV4(b, o + 12) || changed;
    changed = remapV4(b, o + 16) || changed;
    const ihl = ((b[o] as number) & 0xf) * 4;
    const fragOff = ((((b[o + 6] as number) << 8) | (b[o + 7] as number)) & 0x1fff) * 8;
    const t = b[o + ihl];
    if (depth === 0 && b[o + 9] === 1 && fragOff === 0 && o + ihl + 8 + 20 <= end && t !== undefined && [3, 4, 5, 11, 12].includes(t)) {
      changed = remapAddresses(b, o + ihl + 8, end, 1) || changed;
    }
  } else if (v === 6 && o + 40 <= end) {
    changed = remapV6(b, o + 8) || changed;
    changed = remapV6(b, o + 24) || changed;
    const t = b[o + 40];
    if (depth === 0 && b[o + 6] === 58 && o + 48 + 40 <= end && t !== undefined && t < 128) {
      changed = remapAddresses(b, o + 48, end, 1) || changed;
    }
  }
  return changed;
}

/**
 * Checks and fixes one IP packet for forwarding. Returns the packet to send
 * (a copy, trimmed to its IP length) or the reason to leave it out.
 */
export function prepareIp(ip: Uint8Array): { ip: Uint8Array; ttlRaised: boolean; remapped: boolean; badHeaderChecksum?: boolean } | string {
  if (ip.length < 1) return "empty";
  const v = (ip[0] as number) >> 4;
  if (v === 4) {
    if (ip.length < 20) return "truncated";
    const ihl = ((ip[0] as number) & 0xf) * 4;
    const tot = ((ip[2] as number) << 8) | (ip[3] as number);
    if (ihl < 20 || tot < ihl) return "malformed IP header";
    if (tot > ip.length) return "truncated";
    const out = ip.slice(0, tot);
    const remapped = remapAddresses(out, 0, tot);
    const why = v4Unroutable(v4Addr(out, 12), false) ?? v4Unroutable(v4Addr(out, 16), true);
    if (why !== undefined) return why;
    if (hasSourceRoute(out, ihl)) return "v4 source route";
    let ttlRaised = false;
    if ((out[8] as number) <= 1) {
      out[8] = 64;
      ttlRaised = true;
    }
    // A zero header checksum is the capturing host's offload artefact: inject what the wire carried.
    // A wrong non-zero one stays wrong (ip_rcv drops it on both sides), whatever else was changed.
    const wasBad = (ip[10] !== 0 || ip[11] !== 0) && !ipv4HeaderChecksumOk(ip, 0, ihl);
    out[10] = 0;
    out[11] = 0;
    const c = finishChecksum(onesSum(out, 0, ihl, 0));
    const v = wasBad ? (c === 0x1234 ? 0x4321 : 0x1234) : c;
    out[10] = v >> 8;
    out[11] = v & 0xff;
    return { ip: out, ttlRaised, remapped, badHeaderChecksum: wasBad };
  }
  if (v === 6) {
    if (ip.length < 40) return "truncated";
    const plen = ((ip[4] as number) << 8) | (ip[5] as number);
    // Payload length 0 with a hop-by-hop header may be a jumbogram; without one it is an empty packet.
    if (plen === 0 && ip[6] === 0) return "v6 jumbogram";
    const tot = 40 + plen;
    if (tot > ip.length) return "truncated";
    if (tot > MAX_IP) return "larger than 65535";
    const out = ip.slice(0, tot);
    const remapped = remapAddresses(out, 0, tot);
    const why = v6Unroutable(out, 8) ?? v6Unroutable(out, 24);
    if (why !== undefined) return why;
    let ttlRaised = false;
    if ((out[7] as number) <= 1) {
      out[7] = 64;
      ttlRaised = true;
    }
    return { ip: out, ttlRaised, remapped };
  }
  return "not IP";
}

function hasSourceRoute(ip: Uint8Array, ihl: number): boolean {
  let p = 20;
  while (p < ihl) {
    const t = ip[p] as number;
    if (t === 0) break;
    if (t === 1) {
      p++;
      continue;
    }
    if (t === 0x83 || t === 0x89) return true;
    const len = ip[p + 1] as number;
    if (len < 2) break;
    p += len;
  }
  return false;
}

const SRC_MAC = Uint8Array.of(0x02, 0x00, 0x00, 0x00, 0x00, 0x02);

function parseMac(text: string): Uint8Array {
  const b = Uint8Array.from(text.split(":").map((x) => parseInt(x, 16)));
  if (b.length !== 6 || b.some((x) => Number.isNaN(x))) throw new Error(`Invalid MAC address "${text}"`);
  return b;
}

/**
 * Writes IP packets as Ethernet frames to `dstMac` into a pcap at `outPath`.
 * The result says how many frames were written and why others were left out.
 */
export function reframe(records: Iterable<IpRecord>, dstMac: string, outPath: string): ReframeStats {
  const mac = parseMac(dstMac);
  const stats: ReframeStats = { records: 0, written: 0, skipped: {}, ttlRaised: 0, remapped: 0, badHeaderChecksum: 0 };
  const w = new PcapWriter(outPath, { nanosecond: true, snaplen: 65535 + 14 });
  try {
    for (const r of records) {
      stats.records++;
      const p = prepareIp(r.ip);
      if (typeof p === "string") {
        stats.skipped[p] = (stats.skipped[p] ?? 0) + 1;
        continue;
      }
      if (p.ttlRaised) stats.ttlRaised++;
      if (p.remapped) stats.remapped++;
      if (p.badHeaderChecksum === true) stats.badHeaderChecksum++;
      const f = new Uint8Array(14 + p.ip.length);
      f.set(mac, 0);
      f.set(SRC_MAC, 6);
      const v6 = (p.ip[0] as number) >> 4 === 6;
      f[12] = v6 ? 0x86 : 0x08;
      f[13] = v6 ? 0xdd : 0x00;
      f.set(p.ip, 14);
      w.writePacket(r.tsSec, r.tsNsec, f);
      stats.written++;
    }
  } finally {
    w.close();
  }
  return stats;
}

/** IP records of scenario frames (Ethernet, VLAN, PPPoE or bare IP). */
export function* scenarioIpRecords(frames: Iterable<TimedFrame>): Generator<IpRecord> {
  for (const f of frames) {
    let off: number;
    try {
      off = locateIp(f.frame);
    } catch {
      // Not an IP frame: prepareIp reports it as such.
      yield { tsSec: f.tsSec, tsNsec: f.tsNsec, ip: new Uint8Array(0) };
      continue;
    }
    yield { tsSec: f.tsSec, tsNsec: f.tsNsec, ip: f.frame.subarray(off) };
  }
}

export interface CaptureRecords {
  records: IpRecord[];
  /** Records of the file that carry no usable IP packet, by decoder reason. */
  notIp: Record<string, number>;
  /** Records in the file. */
  total: number;
}

/**
 * Reads any capture the project's reader understands (pcap/pcapng, Ethernet,
 * VLAN, SLL, SLL2, raw, null/loop …) and returns the IP packets in it,
 * copied. IPv4 header checksums are not checked here: re-framing rewrites them.
 */
export function captureIpRecords(path: string): CaptureRecords {
  const out: CaptureRecords = { records: [], notIp: {}, total: 0 };
  const parser = new CaptureParser(
    (v) => {
      out.total++;
      decodeFrame(v, DECODE_FLAG.NO_IPV4_CHECKSUM);
      if (v.family === 0) {
        const why = decodeReasonName(v.reason);
        out.notIp[why] = (out.notIp[why] ?? 0) + 1;
        return;
      }
      const end = v.frameOff + v.capLen;
      out.records.push({ tsSec: v.tsSec, tsNsec: v.tsNsec, ip: v.data.slice(v.l3Off, end) });
    },
    { name: path },
  );
  parser.push(readFileSync(path));
  parser.end();
  return out;
}

/** A scratch directory removed by the returned function. */
export function scratchDir(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "ctlab-kernel-"));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface KernelRunOptions {
  /** Counter groups for splitting a batch (by source prefix). */
  groups?: readonly CounterGroup[];
  /** Router-namespace sysctls. */
  sysctls?: Readonly<Record<string, number>>;
  /** Global limits for the run (table-full tests). */
  globalLimits?: GlobalLimits;
  /** Packets per second (default DEFAULT_PPS; slower on retries after lost events). */
  pps?: number;
  /** Replay at the capture's own pace instead (timing scenarios). */
  realtime?: boolean;
}

export interface KernelRun {
  result: KernelResult;
  reframe: ReframeStats;
  /** Injections it took (more than one when events were lost and the run was repeated slower). */
  attempts: number;
  /** Rate of the successful injection (packets/s; 0 for real time). */
  pps: number;
}

/**
 * Re-frames `records` into `outPath` (kept for ctlab to replay) and runs it
 * through a fresh router namespace. Serialised with every other kernel run.
 */
export async function runKernel(records: Iterable<IpRecord>, outPath: string, opts: KernelRunOptions = {}): Promise<KernelRun> {
  // Records may be a one-shot iterator: materialise them once for retries.
  const list = Array.isArray(records) ? (records as IpRecord[]) : [...records];
  const once = (pps: number): Promise<Omit<KernelRun, "attempts" | "pps">> =>
    withTopology(
      async (t) => {
        const stats = reframe(list, t.r0Mac, outPath);
        await loadRuleset(t, countingRuleset(opts.groups ?? []));
        const result = await injectCapture(t, outPath, { frames: stats.written, pps, ...(opts.realtime === true ? { realtime: true } : {}) });
        return { result, reframe: stats };
      },
      opts.sysctls !== undefined ? { sysctls: opts.sysctls } : {},
    );
  const body = async (): Promise<KernelRun> => {
    let pps = opts.pps ?? DEFAULT_PPS;
    for (let attempt = 0; ; attempt++) {
      try {
        return { ...(await once(pps)), attempts: attempt + 1, pps: opts.realtime === true ? 0 : pps };
      } catch (e) {
        // Lost events make a run worthless but say nothing about conntrack:
        // try again, slower, in a fresh namespace.
        if (!(e instanceof EventsLostError) || attempt >= 2) throw e;
        pps = Math.max(1000, Math.floor(pps / 4));
      }
    }
  };
  return opts.globalLimits !== undefined ? withGlobalLimits(opts.globalLimits, body) : withKernelLock(body);
}
