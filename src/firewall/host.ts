/**
 * The host a ruleset runs on, as far as the packet path needs it: which
 * addresses are its own (a packet to one goes to INPUT, a packet from one
 * starts in OUTPUT), which interface a packet arrives on and leaves by, and
 * the address MASQUERADE and REDIRECT take from an interface.
 *
 * The model is deliberately small: interfaces with addresses and prefixes
 * (their connected routes), optional extra routes, a default interface, and
 * optionally one fixed input/output interface for captures taken on a single
 * link (the kernel comparison injects everything through one veth). Built
 * from `--local ADDR…` or from the machine itself (`ip -j addr`, `ip -j route`).
 */
import { spawnSync } from "node:child_process";
import { ADDRTYPE_RTN, cmpWords, formatAddr, parseAddr, prefixRange } from "./values.js";

/** One address of an interface. */
export interface HostAddress {
  readonly iface: string;
  readonly family: 4 | 6;
  readonly words: Uint32Array;
  readonly prefixLen: number;
}

/** A route: packets to `lo..hi` leave by `iface`. */
export interface HostRoute {
  readonly family: 4 | 6;
  readonly lo: Uint32Array;
  readonly hi: Uint32Array;
  readonly prefixLen: number;
  readonly iface: string;
}

/** Options of {@link HostModel}. */
export interface HostModelOptions {
  readonly addrs?: readonly HostAddress[];
  /** Routes beyond the connected prefixes of the addresses. */
  readonly routes?: readonly HostRoute[];
  /** Interface of routes that match nothing else (the default route). Default: the first interface with an address other than lo, or "eth0". */
  readonly defaultIface?: string;
  /** Every packet arrives on this interface (a capture of one link). Default: the interface that routes back to the source. */
  readonly iif?: string | null;
  /** Every forwarded or local packet leaves by this interface. Default: the route to the destination. */
  readonly oif?: string | null;
}

/** The error of a malformed `--local` value or host description. */
export class HostSpecError extends Error {
  override readonly name = "HostSpecError";
}

const LOOPBACK4 = 0x7f000000;

/** Hosts, routes and interfaces; lookups allocate nothing. */
export class HostModel {
  readonly addrs: readonly HostAddress[];
  /** Connected and explicit routes, longest prefix first. */
  readonly routes: readonly HostRoute[];
  readonly defaultIface: string;
  readonly iif: string | null;
  readonly oif: string | null;
  /** The prefix of each address, precomputed (lookups allocate nothing). */
  private readonly addrRanges: ReadonlyArray<{ lo: Uint32Array; hi: Uint32Array }>;

  constructor(opts: HostModelOptions = {}) {
    this.addrs = [...(opts.addrs ?? [])];
    this.addrRanges = this.addrs.map((a) => prefixRange(a.family, a.words, a.prefixLen));
    const routes: HostRoute[] = [...(opts.routes ?? [])];
    for (const a of this.addrs) {
      if (a.iface === "lo") continue;
      const r = prefixRange(a.family, a.words, a.prefixLen);
      routes.push({ family: a.family, lo: r.lo, hi: r.hi, prefixLen: a.prefixLen, iface: a.iface });
    }
    routes.sort((x, y) => y.prefixLen - x.prefixLen);
    this.routes = routes;
    this.defaultIface = opts.defaultIface ?? this.addrs.find((a) => a.iface !== "lo")?.iface ?? "eth0";
    this.iif = opts.iif ?? null;
    this.oif = opts.oif ?? null;
  }

  /** Whether the address is one of the host's own (loopback included). */
  isLocal(family: number, w: ArrayLike<number>): boolean {
    if (family === 4) {
      if (((w[0] as number) & 0xff000000) >>> 0 === LOOPBACK4) return true;
    } else if (family === 6) {
      if (w[0] === 0 && w[1] === 0 && w[2] === 0 && w[3] === 1) return true;
    } else return false;
    const n = family === 4 ? 1 : 4;
    const addrs = this.addrs;
    for (let i = 0; i < addrs.length; i++) {
      const a = addrs[i]!;
      if (a.family === family && cmpWords(a.words, w, n) === 0) return true;
    }
    return false;
  }

  /** Whether the address is the host's own on `iface` (loopback on "lo"). */
  localOn(family: number, w: ArrayLike<number>, iface: string): boolean {
    if (family === 4 && ((w[0] as number) & 0xff000000) >>> 0 === LOOPBACK4) return iface === "lo";
    if (family === 6 && w[0] === 0 && w[1] === 0 && w[2] === 0 && w[3] === 1) return iface === "lo";
    const n = family === 4 ? 1 : 4;
    for (const a of this.addrs) if (a.family === family && a.iface === iface && cmpWords(a.words, w, n) === 0) return true;
    return false;
  }

  /**
   * Whether a packet to this address is delivered to the host rather than
   * forwarded: its own addresses, limited and directed broadcasts of its
   * prefixes, and multicast (a host without a multicast router never forwards it).
   */
  deliversLocally(family: number, w: ArrayLike<number>): boolean {
    const t = this.addrType(family, w);
    return t === ADDRTYPE_RTN.LOCAL || t === ADDRTYPE_RTN.BROADCAST || t === ADDRTYPE_RTN.MULTICAST;
  }

  /** The route type of an address (xt_addrtype / fib lookup), as ADDRTYPE_RTN. */
  addrType(family: number, w: ArrayLike<number>): number {
    if (this.isLocal(family, w)) return ADDRTYPE_RTN.LOCAL!;
    if (family === 4) {
      const x = (w[0] as number) >>> 0;
      if (x === 0xffffffff) return ADDRTYPE_RTN.BROADCAST!;
      if (x >>> 28 === 0xe) return ADDRTYPE_RTN.MULTICAST!;
      const addrs = this.addrs;
      for (let i = 0; i < addrs.length; i++) {
        const a = addrs[i]!;
        if (a.family !== 4 || a.prefixLen >= 31) continue;
        const host = a.prefixLen === 0 ? 0xffffffff : (0xffffffff >>> a.prefixLen) >>> 0;
        if (((x & ~host) >>> 0) === (((a.words[0] as number) & ~host) >>> 0) && ((x & host) >>> 0) === host) return ADDRTYPE_RTN.BROADCAST!;
      }
      return ADDRTYPE_RTN.UNICAST!;
    }
    if (((w[0] as number) >>> 24) === 0xff) return ADDRTYPE_RTN.MULTICAST!;
    return ADDRTYPE_RTN.UNICAST!;
  }

  /** The interface a packet to `w` leaves by (longest prefix, else the default interface). */
  route(family: number, w: ArrayLike<number>): string {
    if (family === 4 && ((w[0] as number) & 0xff000000) >>> 0 === LOOPBACK4) return "lo";
    const n = family === 4 ? 1 : 4;
    const routes = this.routes;
    for (let i = 0; i < routes.length; i++) {
      const r = routes[i]!;
      if (r.family === family && cmpWords(w, r.lo, n) >= 0 && cmpWords(w, r.hi, n) <= 0) return r.iface;
    }
    return this.defaultIface;
  }

  /** Input interface of an arriving packet from `src`. */
  inIface(family: number, src: ArrayLike<number>): string {
    return this.iif ?? this.route(family, src);
  }

  /** Output interface of a packet to `dst`. */
  outIface(family: number, dst: ArrayLike<number>): string {
    if (this.isLocal(family, dst) && family === 4 && ((dst[0] as number) & 0xff000000) >>> 0 === LOOPBACK4) return "lo";
    return this.oif ?? this.route(family, dst);
  }

  /**
   * The source address MASQUERADE picks on `iface` (inet_select_addr /
   * ipv6_dev_get_saddr, simplified): an address of the interface whose prefix
   * holds `dst`, else its first address, else (IPv4) any universe-scope
   * address of the host; null when there is none (the kernel drops the packet).
   */
  sourceFor(family: 4 | 6, iface: string, dst: ArrayLike<number>): Uint32Array | null {
    const n = family === 4 ? 1 : 4;
    let first: HostAddress | null = null;
    for (let i = 0; i < this.addrs.length; i++) {
      const a = this.addrs[i]!;
      if (a.iface !== iface || a.family !== family || isLoopbackAddr(a)) continue;
      if (first === null) first = a;
      const r = this.addrRanges[i]!;
      if (cmpWords(dst, r.lo, n) >= 0 && cmpWords(dst, r.hi, n) <= 0) return a.words;
    }
    if (first !== null) return first.words;
    if (family === 4) {
      for (const a of this.addrs) if (a.family === 4 && !isLoopbackAddr(a)) return a.words;
    }
    return null;
  }

  /**
   * The address REDIRECT sends to: the first address of the input interface
   * (nf_nat_redirect_ipv4/ipv6), or loopback for locally generated packets;
   * null when the interface has none (the kernel drops the packet).
   */
  redirectTarget(family: 4 | 6, iface: string, local: boolean): Uint32Array | null {
    if (local) return family === 4 ? Uint32Array.of(0x7f000001, 0, 0, 0) : Uint32Array.of(0, 0, 0, 1);
    for (const a of this.addrs) if (a.iface === iface && a.family === family) return a.words;
    return null;
  }

  /** One line per address, for summaries: `eth0 203.0.113.10/24`. */
  describe(): string[] {
    return this.addrs.map((a) => `${a.iface} ${formatAddr(a.family, a.words)}/${a.prefixLen}`);
  }
}

function isLoopbackAddr(a: HostAddress): boolean {
  return a.iface === "lo" || (a.family === 4 && ((a.words[0] as number) & 0xff000000) >>> 0 === LOOPBACK4) || (a.family === 6 && a.words[0] === 0 && a.words[1] === 0 && a.words[2] === 0 && a.words[3] === 1);
}

/**
 * Parses `--local` values: `[IFACE=]ADDR[/LEN]`, several per value when
 * separated by commas. Without an interface the address belongs to
 * `defaultIface`; without a prefix it is a host address (/32, /128).
 * @throws {HostSpecError} for a malformed value
 */
export function parseLocalSpecs(values: readonly string[], defaultIface = "eth0"): HostAddress[] {
  const out: HostAddress[] = [];
  for (const value of values) {
    for (const part of value.split(",")) {
      const item = part.trim();
      if (item === "") continue;
      const eq = item.indexOf("=");
      const iface = eq >= 0 ? item.slice(0, eq) : defaultIface;
      const rest = eq >= 0 ? item.slice(eq + 1) : item;
      if (eq >= 0 && !/^[A-Za-z0-9_.:@-]{1,15}$/.test(iface)) throw new HostSpecError(`Invalid interface name "${iface}" in local address "${item}": expected 1 to 15 letters, digits or _.:@-`);
      const slash = rest.indexOf("/");
      const addrText = slash >= 0 ? rest.slice(0, slash) : rest;
      const a = parseAddr(addrText);
      if (a === null) throw new HostSpecError(`Invalid local address "${item}": expected [IFACE=]ADDR[/LEN], e.g. "eth0=203.0.113.10/24"`);
      const max = a.family === 4 ? 32 : 128;
      let len = max;
      if (slash >= 0) {
        const lt = rest.slice(slash + 1);
        len = /^[0-9]{1,3}$/.test(lt) ? Number(lt) : -1;
        if (len < 0 || len > max) throw new HostSpecError(`Invalid prefix length in local address "${item}": must be 0 to ${max}`);
      }
      out.push({ iface, family: a.family, words: a.words, prefixLen: len });
    }
  }
  return out;
}

interface IpAddrJson {
  ifname?: unknown;
  addr_info?: unknown;
}

interface IpRouteJson {
  dst?: unknown;
  dev?: unknown;
}

/**
 * Reads `ip -j addr` and optionally `ip -j route` / `ip -6 -j route` output
 * into host options: every address with its interface and prefix, every
 * route with a device, the default route's device as the default interface.
 * @throws {HostSpecError} when the text is not such JSON
 */
export function hostOptionsFromIpJson(addrJson: string, routeJson: readonly string[] = []): HostModelOptions {
  let list: unknown;
  try {
    list = JSON.parse(addrJson);
  } catch (e) {
    throw new HostSpecError(`Cannot read "ip -j addr" output: ${(e as Error).message}`);
  }
  if (!Array.isArray(list)) throw new HostSpecError('Cannot read "ip -j addr" output: expected a JSON array');
  const addrs: HostAddress[] = [];
  for (const l of list as IpAddrJson[]) {
    if (typeof l?.ifname !== "string" || !Array.isArray(l.addr_info)) continue;
    for (const ai of l.addr_info as Array<Record<string, unknown>>) {
      const fam = ai["family"] === "inet" ? 4 : ai["family"] === "inet6" ? 6 : 0;
      const local = ai["local"];
      const len = ai["prefixlen"];
      if (fam === 0 || typeof local !== "string" || typeof len !== "number") continue;
      const a = parseAddr(local);
      if (a === null || a.family !== fam) continue;
      addrs.push({ iface: l.ifname, family: a.family, words: a.words, prefixLen: len });
    }
  }
  const routes: HostRoute[] = [];
  let defaultIface: string | undefined;
  for (const text of routeJson) {
    let rl: unknown;
    try {
      rl = JSON.parse(text);
    } catch (e) {
      throw new HostSpecError(`Cannot read "ip -j route" output: ${(e as Error).message}`);
    }
    if (!Array.isArray(rl)) continue;
    for (const r of rl as IpRouteJson[]) {
      if (typeof r?.dev !== "string" || typeof r.dst !== "string") continue;
      if (r.dst === "default") {
        defaultIface ??= r.dev;
        continue;
      }
      const [addrText = "", lenText] = r.dst.split("/");
      const a = parseAddr(addrText);
      if (a === null) continue;
      const len = lenText === undefined ? (a.family === 4 ? 32 : 128) : Number(lenText);
      const pr = prefixRange(a.family, a.words, len);
      routes.push({ family: a.family, lo: pr.lo, hi: pr.hi, prefixLen: len, iface: r.dev });
    }
  }
  return { addrs, routes, ...(defaultIface !== undefined ? { defaultIface } : {}) };
}

/**
 * This machine's addresses and routes (`ip -j addr`, `ip -j route`,
 * `ip -6 -j route`).
 * @throws {HostSpecError} when `ip` cannot be run
 */
export function readLocalHost(): HostModelOptions {
  const run = (args: string[]): string => {
    const r = spawnSync("ip", args, { encoding: "utf8", timeout: 10_000 });
    if (r.error !== undefined || r.status !== 0) {
      throw new HostSpecError(`Cannot read the host's addresses with "ip ${args.join(" ")}": ${(r.error?.message ?? r.stderr ?? "").trim() || `exit ${String(r.status)}`}`);
    }
    return r.stdout;
  };
  return hostOptionsFromIpJson(run(["-j", "addr"]), [run(["-j", "route"]), run(["-6", "-j", "route"])]);
}
