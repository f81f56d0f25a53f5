/**
 * The reference the tracker is measured against: what a plain JavaScript
 * connection table looks like — a `Map` from a string key to an object per
 * connection. It does the lookups the tracker does (one per packet, either
 * direction finds the entry), creates an entry for the first packet of a
 * tuple, and keeps a little state per entry (packets per direction, last
 * TCP flags, last-seen time). No window tracking, no expiry, no events: it
 * is a floor for "a table in JS", not a conntrack.
 */
import type { PacketView } from "../src/packet/view.js";

interface Conn {
  proto: number;
  origSrc: string;
  origSport: number;
  packetsOrig: number;
  packetsReply: number;
  lastFlags: number;
  lastSeenMs: number;
  replied: boolean;
}

function addr(family: number, w: Uint32Array): string {
  if (family === 4) return String(w[0]);
  return `${w[0]}:${w[1]}:${w[2]}:${w[3]}`;
}

export class MapTracker {
  readonly map = new Map<string, Conn>();
  newConns = 0;
  packets = 0;

  /** One packet: find or create its connection. Non-IP packets are skipped. */
  process(v: PacketView): void {
    if (v.family === 0 || v.reason !== 0) return;
    this.packets++;
    const src = addr(v.family, v.src);
    const dst = addr(v.family, v.dst);
    // Canonical order of the endpoints, so both directions share a key.
    const forward = src < dst || (src === dst && v.sport <= v.dport);
    const key = forward ? `${v.proto}|${src}|${v.sport}|${dst}|${v.dport}` : `${v.proto}|${dst}|${v.dport}|${src}|${v.sport}`;
    const ms = v.tsSec * 1000 + v.tsNsec / 1e6;
    let c = this.map.get(key);
    if (c === undefined) {
      c = { proto: v.proto, origSrc: src, origSport: v.sport, packetsOrig: 0, packetsReply: 0, lastFlags: 0, lastSeenMs: ms, replied: false };
      this.map.set(key, c);
      this.newConns++;
    }
    if (c.origSrc === src && c.origSport === v.sport) c.packetsOrig++;
    else {
      c.packetsReply++;
      c.replied = true;
    }
    c.lastFlags = v.tcpFlags;
    c.lastSeenMs = ms;
  }
}
