/**
 * Text ↔ binary IP addresses for builders, tests and reports. Not on the hot
 * path: decoders keep addresses as 32-bit words (see PacketView).
 */

/**
 * Parses "10.0.0.1" or "fd00::1" (also "::ffff:1.2.3.4") into network-order
 * bytes: 4 for IPv4, 16 for IPv6.
 *
 * @throws {TypeError} when the text is not an IPv4 or IPv6 address
 */
export function parseIp(text: string): Uint8Array {
  const out = text.includes(":") ? parseIpv6(text) : parseIpv4(text);
  if (out === null) throw new TypeError(`Invalid IP address "${text}"`);
  return out;
}

/** 4 or 6 for an address string, as parseIp would read it. */
export function ipFamily(text: string): 4 | 6 {
  return text.includes(":") ? 6 : 4;
}

function parseIpv4(text: string): Uint8Array | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i] as string;
    if (!/^\d{1,3}$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    out[i] = n;
  }
  return out;
}

function parseIpv6(text: string): Uint8Array | null {
  let s = text;
  const pct = s.indexOf("%");
  if (pct >= 0) s = s.slice(0, pct);
  const out = new Uint8Array(16);
  // An embedded dotted quad occupies the last two groups.
  let tail: Uint8Array | null = null;
  const lastColon = s.lastIndexOf(":");
  if (s.indexOf(".", lastColon) >= 0) {
    tail = parseIpv4(s.slice(lastColon + 1));
    if (tail === null) return null;
    s = s.slice(0, lastColon + 1) + "0:0";
  }
  const dbl = s.indexOf("::");
  if (dbl >= 0 && s.indexOf("::", dbl + 1) >= 0) return null;
  const head = dbl >= 0 ? s.slice(0, dbl) : s;
  const rest = dbl >= 0 ? s.slice(dbl + 2) : "";
  const hg = head === "" ? [] : head.split(":");
  const rg = rest === "" ? [] : rest.split(":");
  if (dbl < 0 && hg.length !== 8) return null;
  if (dbl >= 0 && hg.length + rg.length > 7) return null;
  const groups: string[] = [...hg];
  if (dbl >= 0) for (let i = hg.length + rg.length; i < 8; i++) groups.push("0");
  groups.push(...rg);
  for (let i = 0; i < 8; i++) {
    const g = groups[i] as string;
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
    const n = parseInt(g, 16);
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 0xff;
  }
  if (tail !== null) out.set(tail, 12);
  return out;
}

/** Formats an IPv4 address held in one unsigned 32-bit word. */
export function formatIpv4(w: number): string {
  return `${w >>> 24}.${(w >>> 16) & 0xff}.${(w >>> 8) & 0xff}.${w & 0xff}`;
}

/**
 * Formats an IPv6 address the way glibc's inet_ntop does, which is what
 * conntrack-tools, iptables-save and nft print: the longest run (≥ 2) of zero
 * groups becomes "::" (the first one on ties), and IPv4-compatible (::a.b.c.d)
 * and IPv4-mapped (::ffff:a.b.c.d) addresses end in dotted quad.
 */
export function formatIpv6(w0: number, w1: number, w2: number, w3: number): string {
  const g = [w0 >>> 16, w0 & 0xffff, w1 >>> 16, w1 & 0xffff, w2 >>> 16, w2 & 0xffff, w3 >>> 16, w3 & 0xffff];
  let bestBase = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestBase = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) bestBase = -1;
  let out = "";
  for (let i = 0; i < 8; i++) {
    if (bestBase >= 0 && i >= bestBase && i < bestBase + bestLen) {
      if (i === bestBase) out += ":";
      continue;
    }
    if (i !== 0) out += ":";
    if (i === 6 && bestBase === 0 && (bestLen === 6 || (bestLen === 5 && g[5] === 0xffff))) {
      return out + formatIpv4(w3 >>> 0);
    }
    out += (g[i] as number).toString(16);
  }
  if (bestBase >= 0 && bestBase + bestLen === 8) out += ":";
  return out;
}

/** Formats four network-order words (PacketView layout) as text. */
export function formatIp(family: 4 | 6, words: ArrayLike<number>): string {
  const w0 = (words[0] as number) >>> 0;
  if (family === 4) return formatIpv4(w0);
  return formatIpv6(w0, (words[1] as number) >>> 0, (words[2] as number) >>> 0, (words[3] as number) >>> 0);
}

/** Parses an address string into four words (PacketView layout) and its family. */
export function ipToWords(text: string, out: Uint32Array): 4 | 6 {
  const b = parseIp(text);
  out.fill(0);
  if (b.length === 4) {
    out[0] = (((b[0] as number) << 24) | ((b[1] as number) << 16) | ((b[2] as number) << 8) | (b[3] as number)) >>> 0;
    return 4;
  }
  for (let i = 0; i < 4; i++) {
    const o = i * 4;
    out[i] = (((b[o] as number) << 24) | ((b[o + 1] as number) << 16) | ((b[o + 2] as number) << 8) | (b[o + 3] as number)) >>> 0;
  }
  return 6;
}
