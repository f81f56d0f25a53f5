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
  /**
   * Whether a route matches every destination the other routes do not (a
   * default route). Default true: without a route table (`--local`) the
   * host is assumed to have one.
   */
  readonly defaultRoute?: boolean;
  /**
   * Routes of type local (`ip route add local PREFIX dev lo`, AnyIP): every
   * destination in them is delivered to the host. Their presence makes the
   * kernel validate sources with a full route lookup (fib_has_custom_local_routes).
   */
  readonly localRoutes?: readonly HostRoute[];
  /** Multicast groups joined beyond those every interface joins (224.0.0.1, ff02::1, solicited-node, all-routers). */
  readonly groups?: readonly HostGroup[];
  /**
   * Routing sysctls by full name: `net.ipv4.conf.{all,default,IFACE}.{rp_filter,
   * accept_local,route_localnet,send_redirects}`, `net.ipv4.ip_forward`,
   * `net.ipv6.conf.all.forwarding`. Kernel defaults except forwarding, which
   * defaults to on: the model is a router (the kernel's default is off).
   */
  readonly sysctls?: Readonly<Record<string, number>>;
}

/** A multicast group an interface joined (`ip maddr`). */
export interface HostGroup {
  readonly iface: string;
  readonly family: 4 | 6;
  readonly words: Uint32Array;
}

/**
 * Outcome of the input route decision (ip_route_input_noref /
 * ip6_route_input and the checks of ip_forward / ip6_forward before the
 * FORWARD hook): LOCAL and FORWARD, or why the packet was dropped.
 */
export const RT = {
  LOCAL: 0,
  FORWARD: 1,
  MARTIAN_SOURCE: 2,
  MARTIAN_DESTINATION: 3,
  NO_ROUTE: 4,
  RP_FILTER: 5,
  MC_NOT_JOINED: 6,
  TTL_EXCEEDED: 7,
  BAD_SOURCE_V6: 8,
  /** Dropped by ip6_rcv_core before PREROUTING (conntrack never sees it). */
  V6_RCV: 9,
} as const;

/** Keys of the route-drop counters, by RT value (from MARTIAN_SOURCE on). */
export const RT_DROP_KEYS = [
  "",
  "",
  "martianSource",
  "martianDestination",
  "noRoute",
  "rpFilter",
  "multicastNotJoined",
  "ttlExceeded",
  "badSourceV6",
  "ipv6Receive",
] as const;
export const RT_DROP_NAMES = [
  "",
  "",
  "martian source",
  "martian destination",
  "no route (host unreachable)",
  "reverse path filter (rp_filter)",
  "multicast group not joined",
  "TTL exceeded",
  "IPv6 source not forwarded (unspecified or link-local)",
  "dropped by ip6_rcv before PREROUTING (multicast source, loopback, bad multicast scope)",
] as const;

/** Routing sysctls of one interface, effective values (all and the device combined as the kernel does). */
interface IfConf {
  rpFilter: number;
  acceptLocal: boolean;
  routeLocalnet: boolean;
  sendRedirects: boolean;
}

type ConfKey = "rp_filter" | "accept_local" | "route_localnet" | "send_redirects";
/** Kernel defaults of net.ipv4.conf.{all,default}.*. */
const CONF_DEFAULTS: Readonly<Record<ConfKey, number>> = { rp_filter: 0, accept_local: 0, route_localnet: 0, send_redirects: 1 };

const E_OK = 0;
const E_INVAL = 1;
const E_XDEV = 2;

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
  readonly defaultRoute: boolean;
  readonly localRoutes: readonly HostRoute[];
  readonly groups: readonly HostGroup[];
  /** net.ipv4.ip_forward and net.ipv6.conf.all.forwarding. */
  readonly forward4: boolean;
  readonly forward6: boolean;
  /** Source validation must do a full route lookup (custom local routes). */
  private readonly fullCheck: boolean;
  private readonly conf = new Map<string, IfConf>();
  private readonly confDefault: IfConf;
  /** Interfaces with an IPv4 address (fib_validate_source's no_addr). */
  private readonly v4Ifaces: ReadonlySet<string>;
  /** Interface of the last `fibLookup4`. */
  private fibIface = "";

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
    this.defaultRoute = opts.defaultRoute ?? true;
    this.localRoutes = [...(opts.localRoutes ?? [])].sort((x, y) => y.prefixLen - x.prefixLen);
    this.groups = [...(opts.groups ?? [])];
    this.fullCheck = this.localRoutes.some((r) => r.family === 4);
    this.v4Ifaces = new Set(this.addrs.filter((a) => a.family === 4).map((a) => a.iface));
    const sys = opts.sysctls ?? {};
    for (const [k, v] of Object.entries(sys)) checkRoutingSysctl(k, v);
    const get = (scope: string, key: ConfKey): number | undefined => sys[`net.ipv4.conf.${scope}.${key}`];
    const all = (key: ConfKey): number => get("all", key) ?? CONF_DEFAULTS[key];
    const dflt = (key: ConfKey): number => get("default", key) ?? CONF_DEFAULTS[key];
    // IN_DEV_RPFILTER is max(all, dev); accept_local, route_localnet and send_redirects are all || dev.
    const make = (dev: (key: ConfKey) => number): IfConf => ({
      rpFilter: Math.max(all("rp_filter"), dev("rp_filter")),
      acceptLocal: all("accept_local") !== 0 || dev("accept_local") !== 0,
      routeLocalnet: all("route_localnet") !== 0 || dev("route_localnet") !== 0,
      sendRedirects: all("send_redirects") !== 0 || dev("send_redirects") !== 0,
    });
    this.confDefault = make(dflt);
    const named = new Set<string>(this.addrs.map((a) => a.iface));
    for (const k of Object.keys(sys)) {
      const m = /^net\.ipv4\.conf\.([^.]+)\./.exec(k);
      if (m !== null && m[1] !== "all" && m[1] !== "default") named.add(m[1] as string);
    }
    for (const ifc of named)
      this.conf.set(
        ifc,
        make((key) => get(ifc, key) ?? dflt(key)),
      );
    this.forward4 = (sys["net.ipv4.ip_forward"] ?? 1) !== 0;
    this.forward6 = (sys["net.ipv6.conf.all.forwarding"] ?? 1) !== 0;
  }

  private ifConf(iface: string): IfConf {
    return this.conf.get(iface) ?? this.confDefault;
  }

  /**
   * The input route decision for a packet that arrived on `iif` (after
   * PREROUTING, so it sees the DNAT'ed destination): RT.LOCAL, RT.FORWARD or
   * the RT reason it is dropped for. Follows ip_route_input_rcu /
   * ip_route_input_slow / ip_route_input_mc and fib_validate_source for
   * IPv4, ip6_route_input / ip6_mc_input for IPv6, and the checks ip_forward /
   * ip6_forward make before the FORWARD hook (TTL, IPv6 source scope).
   */
  routeInput(family: number, src: ArrayLike<number>, dst: ArrayLike<number>, iif: string, proto: number, ttl: number): number {
    if (family === 6) return this.routeInput6(src, dst, iif, ttl);
    const s = (src[0] as number) >>> 0;
    const d = (dst[0] as number) >>> 0;
    const c = this.ifConf(iif);
    if (d >>> 28 === 0xe) {
      if (!this.joined(4, iif, dst)) return RT.MC_NOT_JOINED;
      // ip_mc_validate_source
      if (s >>> 28 === 0xe || s === 0xffffffff) return RT.MARTIAN_SOURCE;
      if (s >>> 24 === 127 && !c.routeLocalnet) return RT.MARTIAN_SOURCE;
      if (s === 0) {
        // Zero sources only to link-local groups (224.0.0.0/24) or in IGMP.
        if (d >>> 8 !== 0xe00000 && proto !== 2) return RT.MARTIAN_SOURCE;
      } else {
        const e = this.validateSource(s, iif, "");
        if (e !== E_OK) return e === E_XDEV ? RT.RP_FILTER : RT.MARTIAN_SOURCE;
      }
      return RT.LOCAL;
    }
    if (s >>> 28 === 0xe || s === 0xffffffff) return RT.MARTIAN_SOURCE;
    if (d === 0xffffffff || (s === 0 && d === 0)) return this.brdInput(s, iif);
    // ipv4_is_zeronet is 0.0.0.0 alone since Linux 5.3 (the rest of 0/8 is unicast).
    if (s === 0) return RT.MARTIAN_SOURCE;
    if (d === 0) return RT.MARTIAN_DESTINATION;
    if (d >>> 24 === 127) {
      if (!c.routeLocalnet) return RT.MARTIAN_DESTINATION;
    } else if (s >>> 24 === 127 && !c.routeLocalnet) return RT.MARTIAN_SOURCE;
    const type = this.fibLookup4(d);
    if (type === ADDRTYPE_RTN.BROADCAST) return this.brdInput(s, iif);
    if (type === ADDRTYPE_RTN.LOCAL) {
      const e = this.validateSource(s, iif, "");
      return e === E_OK ? RT.LOCAL : e === E_XDEV ? RT.RP_FILTER : RT.MARTIAN_SOURCE;
    }
    if (type === ADDRTYPE_RTN.UNSPEC || !this.forward4) return RT.NO_ROUTE;
    const e = this.validateSource(s, iif, this.oif ?? this.fibIface);
    if (e !== E_OK) return e === E_XDEV ? RT.RP_FILTER : RT.MARTIAN_SOURCE;
    // ip_forward: a packet that would leave with TTL 0 is dropped (ICMP time exceeded) before FORWARD.
    if (ttl <= 1) return RT.TTL_EXCEEDED;
    return RT.FORWARD;
  }

  private brdInput(s: number, iif: string): number {
    if (s !== 0) {
      const e = this.validateSource(s, iif, "");
      if (e !== E_OK) return e === E_XDEV ? RT.RP_FILTER : RT.MARTIAN_SOURCE;
    }
    return RT.LOCAL;
  }

  /**
   * fib_validate_source: E_OK, E_INVAL (martian: a local or broadcast
   * source) or E_XDEV (rp_filter). `oif` is the output interface of a
   * forwarded packet ("" for local delivery).
   */
  private validateSource(s: number, iif: string, oif: string): number {
    const c = this.ifConf(iif);
    const rpf = c.rpFilter;
    if (rpf === 0 && (iif !== oif || !c.sendRedirects)) {
      if (c.acceptLocal) return E_OK;
      if (!this.fullCheck) return this.isOwnAddr4(s) ? E_INVAL : E_OK;
    }
    // __fib_validate_source: the route back to the source.
    const type = this.fibLookup4(s);
    if (type === ADDRTYPE_RTN.UNSPEC) return rpf !== 0 ? E_XDEV : E_OK;
    if (type !== ADDRTYPE_RTN.UNICAST && (type !== ADDRTYPE_RTN.LOCAL || !c.acceptLocal)) return E_INVAL;
    if (this.fibIface === iif || (type === ADDRTYPE_RTN.LOCAL && iif === "lo")) return E_OK;
    if (!this.v4Ifaces.has(iif)) return rpf !== 0 ? E_XDEV : E_OK;
    if (rpf === 1) return E_XDEV;
    return E_OK;
  }

  /** inet_lookup_ifaddr_rcu: an address configured on any interface. */
  private isOwnAddr4(x: number): boolean {
    const addrs = this.addrs;
    for (let i = 0; i < addrs.length; i++) {
      const a = addrs[i] as HostAddress;
      if (a.family === 4 && (a.words[0] as number) >>> 0 === x) return true;
    }
    return x === 0x7f000001;
  }

  /**
   * fib_lookup for an IPv4 destination: the local table first (own
   * addresses, 127/8, directed broadcasts of the prefixes, local routes),
   * then the main table (longest prefix, then the default route). Returns an
   * ADDRTYPE_RTN value (UNSPEC: no route) and leaves the interface in `fibIface`.
   */
  private fibLookup4(x: number): number {
    if (x >>> 24 === 127) {
      this.fibIface = "lo";
      return ADDRTYPE_RTN.LOCAL;
    }
    const addrs = this.addrs;
    for (let i = 0; i < addrs.length; i++) {
      const a = addrs[i] as HostAddress;
      if (a.family === 4 && (a.words[0] as number) >>> 0 === x) {
        this.fibIface = a.iface;
        return ADDRTYPE_RTN.LOCAL;
      }
    }
    for (let i = 0; i < addrs.length; i++) {
      const a = addrs[i] as HostAddress;
      if (a.family !== 4 || a.prefixLen >= 31) continue;
      const host = a.prefixLen === 0 ? 0xffffffff : (0xffffffff >>> a.prefixLen) >>> 0;
      if ((x & ~host) >>> 0 === ((a.words[0] as number) & ~host) >>> 0 && (x & host) >>> 0 === host) {
        this.fibIface = a.iface;
        return ADDRTYPE_RTN.BROADCAST;
      }
    }
    const lr = this.localRoutes;
    for (let i = 0; i < lr.length; i++) {
      const r = lr[i] as HostRoute;
      if (r.family === 4 && x >= (r.lo[0] as number) >>> 0 && x <= (r.hi[0] as number) >>> 0) {
        this.fibIface = r.iface;
        return ADDRTYPE_RTN.LOCAL;
      }
    }
    const routes = this.routes;
    for (let i = 0; i < routes.length; i++) {
      const r = routes[i] as HostRoute;
      if (r.family === 4 && x >= (r.lo[0] as number) >>> 0 && x <= (r.hi[0] as number) >>> 0) {
        this.fibIface = r.iface;
        return ADDRTYPE_RTN.UNICAST;
      }
    }
    this.fibIface = this.defaultIface;
    return this.defaultRoute ? ADDRTYPE_RTN.UNICAST : ADDRTYPE_RTN.UNSPEC;
  }

  private routeInput6(src: ArrayLike<number>, dst: ArrayLike<number>, iif: string, ttl: number): number {
    const d0 = (dst[0] as number) >>> 0;
    if (d0 >>> 24 === 0xff) return this.joined(6, iif, dst) ? RT.LOCAL : RT.MC_NOT_JOINED;
    if (this.isLocal(6, dst) || this.inLocalRoute6(dst)) return RT.LOCAL;
    // A link-local destination is looked up strictly on the input interface: it can only go back out there.
    const linkLocalDst = d0 >>> 22 === 0x3fa;
    const oif = linkLocalDst ? iif : (this.oif ?? this.route(6, dst));
    if (!this.forward6) return RT.NO_ROUTE;
    if (!linkLocalDst && !this.defaultRoute && !this.hasRoute6(dst)) return RT.NO_ROUTE;
    if (ttl <= 1) return RT.TTL_EXCEEDED;
    if (oif !== iif) {
      // ip6_forward: "This check is security critical" (unspecified source) and link-local sources.
      const s0 = (src[0] as number) >>> 0;
      if (s0 >>> 22 === 0x3fa || (s0 === 0 && src[1] === 0 && src[2] === 0 && src[3] === 0)) return RT.BAD_SOURCE_V6;
    }
    return RT.FORWARD;
  }

  private hasRoute6(w: ArrayLike<number>): boolean {
    for (const r of this.routes) if (r.family === 6 && cmpWords(w, r.lo, 4) >= 0 && cmpWords(w, r.hi, 4) <= 0) return true;
    return false;
  }

  private inLocalRoute4(x: number): boolean {
    const lr = this.localRoutes;
    for (let i = 0; i < lr.length; i++) {
      const r = lr[i] as HostRoute;
      if (r.family === 4 && x >= (r.lo[0] as number) >>> 0 && x <= (r.hi[0] as number) >>> 0) return true;
    }
    return false;
  }

  private inLocalRoute6(w: ArrayLike<number>): boolean {
    const lr = this.localRoutes;
    for (let i = 0; i < lr.length; i++) {
      const r = lr[i] as HostRoute;
      if (r.family === 6 && cmpWords(w, r.lo, 4) >= 0 && cmpWords(w, r.hi, 4) <= 0) return true;
    }
    return false;
  }

  /**
   * ip6_rcv_core's address checks, made before PREROUTING (so conntrack never
   * sees such a packet): a multicast source, the loopback address on an
   * interface other than lo, a multicast destination of scope 0 or
   * interface-local. Returns RT.V6_RCV or 0. IPv4 has no such checks before
   * PREROUTING.
   */
  receiveDrop(family: number, src: ArrayLike<number>, dst: ArrayLike<number>, iif: string): number {
    if (family !== 6) return 0;
    if ((src[0] as number) >>> 24 === 0xff) return RT.V6_RCV;
    if (iif !== "lo" && (isLoopback6(src) || isLoopback6(dst))) return RT.V6_RCV;
    const d0 = (dst[0] as number) >>> 0;
    if (d0 >>> 24 === 0xff) {
      const scope = (d0 >>> 16) & 0xf;
      if (scope === 0 || (scope === 1 && iif !== "lo")) return RT.V6_RCV;
    }
    return 0;
  }

  /**
   * Whether `iif` joined the group `g`: 224.0.0.1 and ff02::1 on every
   * interface (ip_mc_up, ipv6_add_dev), ff01::2/ff02::2/ff05::2 when
   * forwarding, the solicited-node group of each IPv6 address of the
   * interface, and the groups of the host description.
   */
  joined(family: number, iif: string, g: ArrayLike<number>): boolean {
    const g0 = (g[0] as number) >>> 0;
    if (family === 4) {
      if (g0 === 0xe0000001) return true;
    } else {
      const g1 = g[1] as number;
      const g2 = g[2] as number;
      const g3 = (g[3] as number) >>> 0;
      if (g1 === 0 && g2 === 0) {
        if ((g0 === 0xff020000 || g0 === 0xff010000) && g3 === 1) return true;
        if (this.forward6 && (g0 === 0xff020000 || g0 === 0xff010000 || g0 === 0xff050000) && g3 === 2) return true;
      }
      if (g0 === 0xff020000 && g1 === 0 && g2 === 1 && g3 >>> 24 === 0xff) {
        const addrs = this.addrs;
        for (let i = 0; i < addrs.length; i++) {
          const a = addrs[i] as HostAddress;
          if (a.family === 6 && a.iface === iif && ((a.words[3] as number) & 0xffffff) === (g3 & 0xffffff)) return true;
        }
      }
    }
    const groups = this.groups;
    const n = family === 4 ? 1 : 4;
    for (let i = 0; i < groups.length; i++) {
      const x = groups[i] as HostGroup;
      if (x.family === family && x.iface === iif && cmpWords(x.words, g, n) === 0) return true;
    }
    return false;
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
      const a = addrs[i] as HostAddress;
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

  /**
   * Whether a packet the host sends to `dst` by `oif` also comes back in
   * through lo: to its own addresses and broadcasts, to a multicast group
   * only when the interface joined it (ip_mc_output loops back members' groups).
   */
  loopsBack(family: number, dst: ArrayLike<number>, oif: string): boolean {
    const t = this.addrType(family, dst);
    if (t === ADDRTYPE_RTN.MULTICAST) return this.joined(family, oif, dst);
    return t === ADDRTYPE_RTN.LOCAL || t === ADDRTYPE_RTN.BROADCAST || false;
  }

  /** The route type of an address (xt_addrtype / fib lookup), as ADDRTYPE_RTN. */
  addrType(family: number, w: ArrayLike<number>): number {
    if (this.isLocal(family, w)) return ADDRTYPE_RTN.LOCAL;
    if (this.localRoutes.length > 0 && (family === 4 ? this.inLocalRoute4((w[0] as number) >>> 0) : this.inLocalRoute6(w))) return ADDRTYPE_RTN.LOCAL;
    if (family === 4) {
      const x = (w[0] as number) >>> 0;
      if (x === 0xffffffff) return ADDRTYPE_RTN.BROADCAST;
      if (x >>> 28 === 0xe) return ADDRTYPE_RTN.MULTICAST;
      const addrs = this.addrs;
      for (let i = 0; i < addrs.length; i++) {
        const a = addrs[i] as HostAddress;
        if (a.family !== 4 || a.prefixLen >= 31) continue;
        const host = a.prefixLen === 0 ? 0xffffffff : (0xffffffff >>> a.prefixLen) >>> 0;
        if ((x & ~host) >>> 0 === ((a.words[0] as number) & ~host) >>> 0 && (x & host) >>> 0 === host) return ADDRTYPE_RTN.BROADCAST;
      }
      return ADDRTYPE_RTN.UNICAST;
    }
    if ((w[0] as number) >>> 24 === 0xff) return ADDRTYPE_RTN.MULTICAST;
    return ADDRTYPE_RTN.UNICAST;
  }

  /** The interface a packet to `w` leaves by (longest prefix, else the default interface). */
  route(family: number, w: ArrayLike<number>): string {
    if (family === 4 && ((w[0] as number) & 0xff000000) >>> 0 === LOOPBACK4) return "lo";
    const n = family === 4 ? 1 : 4;
    const routes = this.routes;
    for (let i = 0; i < routes.length; i++) {
      const r = routes[i] as HostRoute;
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
      const a = this.addrs[i] as HostAddress;
      if (a.iface !== iface || a.family !== family || isLoopbackAddr(a)) continue;
      if (first === null) first = a;
      const r = this.addrRanges[i] as { lo: Uint32Array; hi: Uint32Array };
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

function isLoopback6(w: ArrayLike<number>): boolean {
  return w[0] === 0 && w[1] === 0 && w[2] === 0 && w[3] === 1;
}

/**
 * Checks one routing sysctl of a host description.
 * @throws {HostSpecError} for a name the host model does not know or a value out of range
 */
export function checkRoutingSysctl(name: string, value: number): void {
  const m = /^net\.ipv4\.conf\.([A-Za-z0-9_.:@-]{1,15})\.(rp_filter|accept_local|route_localnet|send_redirects)$/.exec(name);
  const max = m !== null ? (m[2] === "rp_filter" ? 2 : 1) : name === "net.ipv4.ip_forward" || name === "net.ipv6.conf.all.forwarding" ? 1 : -1;
  if (max < 0) {
    throw new HostSpecError(
      `Unknown routing sysctl "${name}": expected net.ipv4.conf.{all,default,IFACE}.{rp_filter,accept_local,route_localnet,send_redirects}, net.ipv4.ip_forward or net.ipv6.conf.all.forwarding`,
    );
  }
  if (!Number.isInteger(value) || value < 0 || value > max) throw new HostSpecError(`Invalid value "${String(value)}" for "${name}": must be 0 to ${max}`);
}

/** Whether a sysctl name is one of the host model's routing sysctls (rather than a conntrack one). */
export function isRoutingSysctl(name: string): boolean {
  return /^net\.ipv4\.conf\.|^net\.ipv4\.ip_forward$|^net\.ipv6\.conf\.all\.forwarding$/.test(name);
}

function isLoopbackAddr(a: HostAddress): boolean {
  return (
    a.iface === "lo" ||
    (a.family === 4 && ((a.words[0] as number) & 0xff000000) >>> 0 === LOOPBACK4) ||
    (a.family === 6 && a.words[0] === 0 && a.words[1] === 0 && a.words[2] === 0 && a.words[3] === 1)
  );
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
      if (eq >= 0 && !/^[A-Za-z0-9_.:@-]{1,15}$/.test(iface))
        throw new HostSpecError(`Invalid interface name "${iface}" in local address "${item}": expected 1 to 15 letters, digits or _.:@-`);
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
  type?: unknown;
}

/**
 * Reads `ip -j addr` and optionally `ip -j route` / `ip -6 -j route` output
 * into host options: every address with its interface and prefix, every
 * route with a device, the default route's device as the default interface.
 * @throws {HostSpecError} when the text is not such JSON
 */
export function hostOptionsFromIpJson(
  addrJson: string,
  routeJson: readonly string[] = [],
  extra: { localTable?: readonly string[]; maddr?: string } = {},
): HostModelOptions {
  let list: unknown;
  try {
    list = JSON.parse(addrJson);
  } catch (e) {
    throw new HostSpecError(`Cannot read "ip -j addr" output: ${(e as Error).message}`);
  }
  if (!Array.isArray(list)) throw new HostSpecError('Cannot read "ip -j addr" output: expected a JSON array');
  const addrs: HostAddress[] = [];
  // Elements of the JSON may be anything, null included.
  for (const l of list as Array<IpAddrJson | null>) {
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
    for (const r of rl as Array<IpRouteJson | null>) {
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
  const localRoutes: HostRoute[] = [];
  for (const text of extra.localTable ?? []) {
    for (const r of parseJsonList(text, "ip -j route show table local") as Array<IpRouteJson | null>) {
      if (r?.type !== "local" || typeof r.dev !== "string" || typeof r.dst !== "string") continue;
      const [addrText = "", lenText] = r.dst.split("/");
      const a = parseAddr(addrText);
      if (a === null) continue;
      const len = lenText === undefined ? (a.family === 4 ? 32 : 128) : Number(lenText);
      // Routes of the host's own addresses and of 127/8 are what the model already knows.
      if (len === (a.family === 4 ? 32 : 128) && addrs.some((x) => x.family === a.family && cmpWords(x.words, a.words, a.family === 4 ? 1 : 4) === 0)) continue;
      if (a.family === 4 && (a.words[0] as number) >>> 24 === 127) continue;
      if (a.family === 6 && len === 128 && isLoopback6(a.words)) continue;
      const pr = prefixRange(a.family, a.words, len);
      localRoutes.push({ family: a.family, lo: pr.lo, hi: pr.hi, prefixLen: len, iface: r.dev });
    }
  }
  const groups: HostGroup[] = [];
  if (extra.maddr !== undefined) {
    for (const l of parseJsonList(extra.maddr, "ip -j maddr") as Array<{ ifname?: unknown; maddr?: unknown } | null>) {
      if (typeof l?.ifname !== "string" || !Array.isArray(l.maddr)) continue;
      for (const m of l.maddr as Array<Record<string, unknown>>) {
        const g = typeof m["address"] === "string" ? parseAddr(m["address"]) : null;
        if (g !== null) groups.push({ iface: l.ifname, family: g.family, words: g.words });
      }
    }
  }
  return {
    addrs,
    routes,
    ...(defaultIface !== undefined ? { defaultIface } : {}),
    ...(routeJson.length > 0 ? { defaultRoute: defaultIface !== undefined } : {}),
    ...(localRoutes.length > 0 ? { localRoutes } : {}),
    ...(groups.length > 0 ? { groups } : {}),
  };
}

function parseJsonList(text: string, what: string): unknown[] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new HostSpecError(`Cannot read "${what}" output: ${(e as Error).message}`);
  }
  return Array.isArray(v) ? v : [];
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
      throw new HostSpecError(
        // Node types stderr as a string, but it is null when "ip" could not be spawned.
        // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
        `Cannot read the host's addresses with "ip ${args.join(" ")}": ${(r.error?.message ?? r.stderr ?? "").trim() || `exit ${String(r.status)}`}`,
      );
    }
    return r.stdout;
  };
  return hostOptionsFromIpJson(run(["-j", "addr"]), [run(["-j", "route"]), run(["-6", "-j", "route"])], {
    localTable: [run(["-j", "route", "show", "table", "local"]), run(["-6", "-j", "route", "show", "table", "local"])],
    maddr: run(["-j", "maddr"]),
  });
}
