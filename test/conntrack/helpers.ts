/**
 * Fixtures for the conntrack core tests: a manual clock, a tracker factory
 * that records `conntrack -E` lines and kernel log lines, packets built as
 * real frames and decoded into one reused PacketView, and views filled by
 * hand for the tests that want no decoder in the way.
 */
import { buildGre, buildIcmp, buildIcmpError, buildSctp, buildTcp, buildUdp, buildUdpLite } from "../../src/packet/build.js";
import type {
  GreBuildOptions,
  IcmpBuildOptions,
  IcmpErrorOptions,
  SctpBuildOptions,
  TcpBuildOptions,
  UdpBuildOptions,
  UdpLiteBuildOptions,
} from "../../src/packet/build.js";
import { decodeFrame } from "../../src/packet/decode.js";
import { ipToWords } from "../../src/packet/addr.js";
import { PacketView } from "../../src/packet/view.js";
import { EventLineSink } from "../../src/conntrack/events.js";
import { Tracker } from "../../src/conntrack/tracker.js";
import type { TrackerOptions } from "../../src/conntrack/tracker.js";
import type { EntryReader } from "../../src/conntrack/entry.js";

/** A clock the test moves by hand (milliseconds). */
export class ManualClock {
  t: number;
  constructor(start = 1_700_000_000_000) {
    this.t = start;
  }
  now(): number {
    return this.t;
  }
  /** Moves forward by `ms`. */
  tick(ms: number): void {
    this.t += ms;
  }
}

/** A tracker with a manual clock, an event line recorder and a log recorder. */
export interface Rig {
  tr: Tracker;
  clock: ManualClock;
  events: EventLineSink;
  logs: string[];
}

/** Small default table so tests stay fast; override through `sysctls`. */
export function rig(opts: { sysctls?: Record<string, number | string>; seed?: number; extended?: boolean; timestamp?: boolean; events?: boolean } = {}): Rig {
  const clock = new ManualClock();
  const events = new EventLineSink({ extended: opts.extended ?? false, timestamp: opts.timestamp ?? false });
  const logs: string[] = [];
  const o: TrackerOptions = {
    sysctls: { nf_conntrack_max: 4096, nf_conntrack_buckets: 4096, ...opts.sysctls },
    clock,
    seed: opts.seed ?? 12345,
    events: opts.events === false ? null : events,
    log: (_t, line) => logs.push(line),
  };
  return { tr: new Tracker(o), clock, events, logs };
}

const view = new PacketView();

/** Decodes a built Ethernet frame into the shared view. */
export function decoded(frame: Uint8Array): PacketView {
  decodeFrame(view.setFrame(frame));
  return view;
}

export const tcp = (o: TcpBuildOptions): PacketView => decoded(buildTcp(o));
export const udp = (o: UdpBuildOptions): PacketView => decoded(buildUdp(o));
export const udplite = (o: UdpLiteBuildOptions): PacketView => decoded(buildUdpLite(o));
export const icmp = (o: IcmpBuildOptions): PacketView => decoded(buildIcmp(o));
export const sctp = (o: SctpBuildOptions): PacketView => decoded(buildSctp(o));
export const gre = (o: GreBuildOptions): PacketView => decoded(buildGre(o));
export const icmpError = (inner: Uint8Array, o: IcmpErrorOptions): PacketView => decoded(buildIcmpError(inner, o));

/** The word-0 value of an IPv4 address. */
export function ip4(text: string): number {
  const w = new Uint32Array(4);
  ipToWords(text, w);
  return w[0] as number;
}

const hand = new PacketView();

/**
 * A view filled by hand (no bytes behind it): IPv4 or IPv6 by the address
 * text, transport fields as given.
 */
export function handView(f: {
  src: string;
  dst: string;
  proto: number;
  sport?: number;
  dport?: number;
  l4Len?: number;
  icmpType?: number;
  icmpCode?: number;
  icmpId?: number;
}): PacketView {
  const v = hand;
  v.resetDecoded();
  v.data = new Uint8Array(0);
  v.family = ipToWords(f.src, v.src);
  ipToWords(f.dst, v.dst);
  v.proto = f.proto;
  v.l4Off = 0;
  v.l4Len = f.l4Len ?? 20;
  v.l4CapLen = 0;
  v.l4Ok = true;
  v.sport = f.sport ?? 0;
  v.dport = f.dport ?? 0;
  if (f.icmpType !== undefined) {
    v.icmpType = f.icmpType;
    v.icmpCode = f.icmpCode ?? 0;
    v.icmpId = f.icmpId ?? 0;
  }
  return v;
}

/** A hand-filled IPv4 UDP view from numeric addresses (fast, for bulk tests). */
export function udpFast(v: PacketView, src: number, dst: number, sport: number, dport: number): PacketView {
  v.family = 4;
  v.proto = 17;
  v.src[0] = src;
  v.dst[0] = dst;
  v.sport = sport;
  v.dport = dport;
  v.l4Ok = true;
  v.l4Len = 20;
  v.l4CapLen = 0;
  return v;
}

/** Ids of the live entries, in `entries()` order. */
export function entryIds(tr: Tracker): number[] {
  const ids: number[] = [];
  for (const e of tr.entries()) ids.push(e.id);
  return ids;
}

/** A reader of its own for live entry `id`; fails the test when there is none. */
export function entryOf(tr: Tracker, id: number): EntryReader {
  const e = tr.entry(id);
  if (e === null) throw new Error(`No live entry ${id}`);
  return e;
}

/** The first live entry (the only one, in most tests). */
export function firstEntry(tr: Tracker): EntryReader {
  const id = entryIds(tr)[0];
  if (id === undefined) throw new Error("The table is empty");
  return entryOf(tr, id);
}
