/**
 * Traffic boxes: the cross product of the fields a rule's stateless matches
 * constrain (protocols, ports, addresses, interfaces), with overlap and
 * cover tests, the mirror (reply) box and a short description.
 */
import type { Rule } from "../model.js";
import { matchTrackingReasons } from "../tracking.js";
import { NumSet, PORT_PROTOS, cmpWords, formatAddr, maskToPrefix, protoName } from "../values.js";
import type { IfacePattern, AddrSet } from "../values.js";

/** A traffic class: the cross product of the constrained fields (null = any). */
export interface TrafficBox {
  readonly family: 0 | 4 | 6;
  readonly protos: NumSet | null;
  readonly sport: NumSet | null;
  readonly dport: NumSet | null;
  readonly saddr: AddrSet | null;
  readonly daddr: AddrSet | null;
  readonly iif: readonly IfacePattern[] | null;
  readonly oif: readonly IfacePattern[] | null;
  /** True when the rule has stateless conditions the box does not express (negations, marks, limits, …). */
  readonly approximate: boolean;
}

/** The box of a rule's stateless matches (an over-approximation when `approximate`). */
export function boxOf(r: Rule): TrafficBox {
  let family: 0 | 4 | 6 = r.family === "ip" ? 4 : r.family === "ip6" ? 6 : 0;
  let protos: NumSet | null = null;
  let sport: NumSet | null = null;
  let dport: NumSet | null = null;
  let saddr: AddrSet | null = null;
  let daddr: AddrSet | null = null;
  let iif: readonly IfacePattern[] | null = null;
  let oif: readonly IfacePattern[] | null = null;
  let approximate = false;
  for (const m of r.matches) {
    switch (m.kind) {
      case "proto":
        if (m.neg) approximate = true;
        else if (!protos || m.protos.pairs().length < protos.pairs().length || sameProtoSet(protos, PORT_PROTOS)) protos = m.protos;
        break;
      case "nfproto":
        if (m.neg) approximate = true;
        else family = m.family;
        break;
      case "addr":
        if (m.neg) approximate = true;
        else {
          family = m.set.family;
          if (m.dir === "src") saddr = m.set;
          else daddr = m.set;
        }
        break;
      case "port":
        if (m.neg || m.dir === "any") approximate = true;
        else {
          if (!protos) protos = m.protos;
          if (m.dir === "src") sport = m.set;
          else dport = m.set;
        }
        break;
      case "iface":
        if (m.neg) approximate = true;
        else if (m.dir === "in") iif = m.names;
        else oif = m.names;
        break;
      case "icmp":
        if (!protos) protos = NumSet.of(m.v6 ? 58 : 1);
        approximate = true;
        break;
      case "comment":
        break;
      default:
        if (matchTrackingReasons(m, r, false).length === 0) approximate = true;
        break;
    }
  }
  // A wildcard `-p tcp -m tcp` without ports selects every port: keep it null.
  if (sport && isFullPorts(sport)) sport = null;
  if (dport && isFullPorts(dport)) dport = null;
  return { family, protos, sport, dport, saddr, daddr, iif, oif, approximate };
}

function sameProtoSet(s: NumSet, list: readonly number[]): boolean {
  return list.every((p) => s.has(p)) && s.pairs().every(([lo, hi]) => lo === hi && list.includes(lo));
}

function isFullPorts(s: NumSet): boolean {
  return s.pairs().some(([lo, hi]) => lo === 0 && hi === 65535);
}

function numOverlap(a: NumSet | null, b: NumSet | null): boolean {
  if (!a || !b) return true;
  for (const [alo, ahi] of a.pairs()) for (const [blo, bhi] of b.pairs()) if (alo <= bhi && blo <= ahi) return true;
  return false;
}

function numCovers(a: NumSet | null, b: NumSet | null): boolean {
  if (!a) return true;
  if (!b) return false;
  return b.pairs().every(([blo, bhi]) => a.pairs().some(([alo, ahi]) => alo <= blo && bhi <= ahi));
}

function addrOverlap(a: AddrSet | null, b: AddrSet | null): boolean {
  if (!a || !b) return true;
  if (a.family !== b.family) return false;
  const n = a.family === 4 ? 1 : 4;
  for (let i = 0; i < a.size; i++) {
    const x = a.range(i);
    for (let j = 0; j < b.size; j++) {
      const y = b.range(j);
      if (cmpWords(x.lo, y.hi, n) <= 0 && cmpWords(y.lo, x.hi, n) <= 0) return true;
    }
  }
  return false;
}

function addrCovers(a: AddrSet | null, b: AddrSet | null): boolean {
  if (!a) return true;
  if (!b || a.family !== b.family) return false;
  const n = a.family === 4 ? 1 : 4;
  for (let j = 0; j < b.size; j++) {
    const y = b.range(j);
    let ok = false;
    for (let i = 0; i < a.size && !ok; i++) {
      const x = a.range(i);
      ok = cmpWords(x.lo, y.lo, n) <= 0 && cmpWords(y.hi, x.hi, n) <= 0;
    }
    if (!ok) return false;
  }
  return true;
}

function ifOverlap(a: readonly IfacePattern[] | null, b: readonly IfacePattern[] | null): boolean {
  if (!a || !b) return true;
  return a.some((x) =>
    b.some((y) => (x.prefix && y.name.startsWith(x.name)) || (y.prefix && x.name.startsWith(y.name)) || (!x.prefix && !y.prefix && x.name === y.name)),
  );
}

function ifCovers(a: readonly IfacePattern[] | null, b: readonly IfacePattern[] | null): boolean {
  if (!a) return true;
  if (!b) return false;
  return b.every((y) => a.some((x) => (x.prefix ? y.name.startsWith(x.name) : !y.prefix && x.name === y.name)));
}

/** Whether some packet could be in both boxes. */
export function boxesOverlap(a: TrafficBox, b: TrafficBox): boolean {
  if (a.family && b.family && a.family !== b.family) return false;
  return (
    numOverlap(a.protos, b.protos) &&
    numOverlap(a.sport, b.sport) &&
    numOverlap(a.dport, b.dport) &&
    addrOverlap(a.saddr, b.saddr) &&
    addrOverlap(a.daddr, b.daddr) &&
    ifOverlap(a.iif, b.iif) &&
    ifOverlap(a.oif, b.oif)
  );
}

/** Whether box `a` holds every packet of box `b` (ignoring `approximate`). */
export function boxCovers(a: TrafficBox, b: TrafficBox): boolean {
  if (a.family && a.family !== b.family) return false;
  return (
    numCovers(a.protos, b.protos) &&
    numCovers(a.sport, b.sport) &&
    numCovers(a.dport, b.dport) &&
    addrCovers(a.saddr, b.saddr) &&
    addrCovers(a.daddr, b.daddr) &&
    ifCovers(a.iif, b.iif) &&
    ifCovers(a.oif, b.oif)
  );
}

/** The reply direction of a box: ports, addresses and interfaces swapped. */
export function mirrorBox(b: TrafficBox): TrafficBox {
  return { ...b, sport: b.dport, dport: b.sport, saddr: b.daddr, daddr: b.saddr, iif: b.oif, oif: b.iif };
}

/** A short human description: `udp dport 53`, `tcp dport 80,443 from 10.0.0.0/8`. */
export function describeBox(b: TrafficBox): string {
  const parts: string[] = [];
  if (b.family) parts.push(b.family === 4 ? "ipv4" : "ipv6");
  if (b.protos)
    parts.push(
      b.protos
        .pairs()
        .map(([lo, hi]) => (lo === hi ? protoName(lo).replace("ipv6-icmp", "icmpv6") : `${lo}-${hi}`))
        .join(","),
    );
  if (b.sport) parts.push(`sport ${fmtNums(b.sport, "-")}`);
  if (b.dport) parts.push(`dport ${fmtNums(b.dport, "-")}`);
  if (b.saddr) parts.push(`saddr ${addrTexts(b.saddr).join(",")}`);
  if (b.daddr) parts.push(`daddr ${addrTexts(b.daddr).join(",")}`);
  if (b.iif) parts.push(`iif ${b.iif.map((x) => x.name + (x.prefix ? "*" : "")).join(",")}`);
  if (b.oif) parts.push(`oif ${b.oif.map((x) => x.name + (x.prefix ? "*" : "")).join(",")}`);
  return parts.length ? parts.join(" ") : "all traffic";
}

export function fmtNums(s: NumSet, sep: string): string {
  return s
    .pairs()
    .map(([lo, hi]) => (lo === hi ? String(lo) : `${lo}${sep}${hi}`))
    .join(",");
}

/** CIDR (or lo-hi) texts of an address set. */
export function addrTexts(s: AddrSet): string[] {
  const out: string[] = [];
  for (let i = 0; i < s.size; i++) {
    const r = s.range(i);
    out.push(rangeText(s.family, r.lo, r.hi));
  }
  return out;
}

function rangeText(family: 4 | 6, lo: Uint32Array, hi: Uint32Array): string {
  // A prefix when lo..hi is one aligned block.
  const mask = new Uint32Array(4);
  for (let k = 0; k < 4; k++) mask[k] = ~((lo[k] as number) ^ (hi[k] as number)) >>> 0;
  const len = maskToPrefix(family, mask);
  if (len >= 0) {
    let aligned = true;
    for (let k = 0; k < (family === 4 ? 1 : 4); k++)
      if (((lo[k] as number) & ~(mask[k] as number)) !== 0 || ((hi[k] as number) | (mask[k] as number)) >>> 0 !== 0xffffffff) aligned = false;
    if (aligned) return `${formatAddr(family, lo)}/${len}`;
  }
  return `${formatAddr(family, lo)}-${formatAddr(family, hi)}`;
}
