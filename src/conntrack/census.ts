/**
 * Who fills the table: a census of conntrack entries by source, destination,
 * destination port, /24 and /64 network, protocol and state, with the shares
 * of UNREPLIED and ASSURED entries.
 *
 * One module for every table there is: the replay summary feeds it the
 * tracker's entries (`addReader`), the live-host commands feed it entries
 * parsed from `conntrack -L` (`add` with a plain {@link CensusEntry}).
 *
 * Exact and memory-bounded: `add` appends a few typed-array columns (14 bytes
 * per IPv4 entry, 38 per IPv6 entry; a million IPv4 entries ≈ 14 MB, grown by
 * doubling), and `result()` sorts one key column at a time (native numeric
 * sort of a Uint32Array copy for IPv4 and ports, an index sort for IPv6),
 * counts runs and keeps the top N in a small sorted array. Nothing is a
 * string until the top N are formatted, so a table of a million distinct
 * sources costs no million-key Map.
 *
 * Order: largest first; ties by key (IPv4 before IPv6, then numeric address,
 * protocol number then port, protocol number then state name), so the same
 * table always gives the same lists.
 */
import type { TupleReader } from "./entry.js";
import { formatIp } from "../packet/addr.js";
import { IPS } from "./constants.js";

/**
 * One entry as the census needs it; every field is what `conntrack -L` shows.
 *
 * For the live-host reader (`conntrack -L` lines): fill one object per line,
 * or reuse one and call `add` for each (the census copies what it needs):
 *
 * ```ts
 * const e = { family: 4, proto: 6, state: "ESTABLISHED", unreplied: false, assured: true,
 *             timeoutSeconds: 431999, src: new Uint32Array(4), dst: new Uint32Array(4), sport: 51234, dport: 443 };
 * e.family = ipToWords("10.0.0.1", e.src);  // from src= of the first (original) tuple
 * ipToWords("192.0.2.1", e.dst);
 * census.add(e);
 * ```
 */
export interface CensusEntry {
  /** IP version. */
  readonly family: 4 | 6;
  /** IP protocol number (`conntrack -L`'s second column): 6 TCP, 17 UDP, 1 ICMP, … */
  readonly proto: number;
  /** Protocol state ("ESTABLISHED", "TIME_WAIT", …); "" for protocols without states (UDP, ICMP, …). */
  readonly state: string;
  /** `[UNREPLIED]`: no reply seen yet (IPS_SEEN_REPLY clear). */
  readonly unreplied: boolean;
  /** `[ASSURED]`. */
  readonly assured: boolean;
  /** Remaining timeout in seconds, as the third column. */
  readonly timeoutSeconds: number;
  /** Original-direction addresses: four network-order 32-bit words, IPv4 in word 0 (see `ipToWords`). */
  readonly src: ArrayLike<number>;
  readonly dst: ArrayLike<number>;
  /** Original-direction ports (for TCP, UDP, UDP-Lite, SCTP, DCCP; anything for other protocols). */
  readonly sport: number;
  readonly dport: number;
}

/** The part of a tuple the census reads: the tracker's own `TupleReader` (one shape for both). */
export type CensusTuple = Pick<TupleReader, "s0" | "s1" | "s2" | "s3" | "d0" | "d1" | "d2" | "d3" | "sport" | "dport">;

/** The part of the tracker's read-only entry view the census reads (structurally an `EntryReader`). */
export interface CensusReader {
  readonly family: 4 | 6;
  readonly proto: number;
  /** "" for protocols without states. */
  readonly stateName: string;
  /** `IPS.*` status bits. */
  readonly status: number;
  readonly timeoutSeconds: number;
  tuple(dir: 0 | 1): CensusTuple;
}

/** One line of a top list. */
export interface CensusItem {
  /** "10.0.0.1", "10.0.0.0/24", "2001:db8::/64", "tcp/443", "tcp ESTABLISHED", "udp", "ipv4". */
  key: string;
  entries: number;
  /** entries / all entries of the census, 0..1 (rounded to 6 digits). */
  share: number;
}

/** A dimension: how many distinct keys, and the largest ones. */
export interface CensusList {
  distinct: number;
  top: CensusItem[];
}

/** A count and its share of the census. */
export interface CensusShare {
  entries: number;
  share: number;
}

/** What `Census.result()` returns; the JSON summary's `census` objects have this shape. */
export interface CensusResult {
  entries: number;
  /** The N of the top lists. */
  top: number;
  families: CensusList;
  protocols: CensusList;
  /** "tcp ESTABLISHED", "sctp COOKIE_WAIT", or the protocol alone ("udp") when it has no states. */
  states: CensusList;
  sources: CensusList;
  destinations: CensusList;
  /** "tcp/443", "udp/53": protocols with ports only. */
  destination_ports: CensusList;
  /** Sources by /24 (IPv4) and /64 (IPv6). */
  source_networks: CensusList;
  /** Destinations by /24 (IPv4) and /64 (IPv6). */
  destination_networks: CensusList;
  unreplied: CensusShare;
  assured: CensusShare;
}

/** Census options. */
export interface CensusOptions {
  /** Entries expected, to size the columns once (they grow by doubling beyond it). */
  expected?: number;
}

const PROTO_NAMES: Readonly<Record<number, string>> = { 1: "icmp", 6: "tcp", 17: "udp", 33: "dccp", 47: "gre", 58: "icmpv6", 132: "sctp", 136: "udplite" };

/** `conntrack -L`'s protocol name for a number ("unknown" for the rest, as conntrack prints). */
export function censusProtoName(proto: number): string {
  return PROTO_NAMES[proto] ?? "unknown";
}

function hasPorts(proto: number): boolean {
  return proto === 6 || proto === 17 || proto === 136 || proto === 132 || proto === 33;
}

const F_UNREPLIED = 1;
const F_ASSURED = 2;
const F_V6 = 4;

function round6(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}

/**
 * Top-N keeper: candidates arrive in ascending key order, so on equal counts
 * the one already kept (the smaller key) stays ahead.
 */
class TopN {
  readonly counts: number[] = [];
  readonly keys: number[] = [];
  distinct = 0;
  constructor(readonly n: number) {}
  offer(count: number, key: number): void {
    this.distinct++;
    const c = this.counts;
    if (this.n === 0) return;
    if (c.length === this.n && count <= (c[c.length - 1] as number)) return;
    let i = c.length;
    while (i > 0 && (c[i - 1] as number) < count) i--;
    c.splice(i, 0, count);
    this.keys.splice(i, 0, key);
    if (c.length > this.n) {
      c.pop();
      this.keys.pop();
    }
  }
}

/** Counts runs of a sorted Uint32Array into a TopN whose keys are the values. */
function runs(sorted: Uint32Array, top: TopN): void {
  const n = sorted.length;
  let i = 0;
  while (i < n) {
    const v = sorted[i] as number;
    let j = i + 1;
    while (j < n && sorted[j] === v) j++;
    top.offer(j - i, v);
    i = j;
  }
}

/**
 * Merges per-family top lists (IPv4 first on ties) into CensusItems.
 */
function merge(n: number, total: number, parts: Array<{ top: TopN; fmt: (key: number) => string }>): CensusList {
  const all: Array<{ count: number; part: number; rank: number; key: number }> = [];
  let distinct = 0;
  parts.forEach((p, part) => {
    distinct += p.top.distinct;
    p.top.counts.forEach((count, rank) => all.push({ count, part, rank, key: p.top.keys[rank] as number }));
  });
  all.sort((a, b) => b.count - a.count || a.part - b.part || a.rank - b.rank);
  const list = all.slice(0, n);
  return {
    distinct,
    top: list.map((x) => ({
      key: (parts[x.part] as { fmt: (key: number) => string }).fmt(x.key),
      entries: x.count,
      share: total === 0 ? 0 : round6(x.count / total),
    })),
  };
}

/** Accumulates entries; `result()` may be called any number of times. */
export class Census {
  #n = 0;
  #cap: number;
  #flags: Uint8Array;
  #proto: Uint8Array;
  #state: Uint8Array;
  #dport: Uint16Array;
  #timeout: Uint32Array;
  /** IPv4: the address itself; IPv6: the index of the entry's words in #src6/#dst6. */
  #src: Uint32Array;
  #dst: Uint32Array;
  #n6 = 0;
  #src6: Uint32Array = new Uint32Array(0);
  #dst6: Uint32Array = new Uint32Array(0);
  /** State names by index (a handful: the kernel has at most a dozen per protocol). */
  readonly #states: string[] = [""];
  readonly #stateIndex = new Map<string, number>([["", 0]]);

  constructor(options: CensusOptions = {}) {
    this.#cap = Math.max(16, Math.floor(options.expected ?? 1024));
    this.#flags = new Uint8Array(this.#cap);
    this.#proto = new Uint8Array(this.#cap);
    this.#state = new Uint8Array(this.#cap);
    this.#dport = new Uint16Array(this.#cap);
    this.#timeout = new Uint32Array(this.#cap);
    this.#src = new Uint32Array(this.#cap);
    this.#dst = new Uint32Array(this.#cap);
  }

  /** Entries added so far. */
  get size(): number {
    return this.#n;
  }

  /** Bytes held by the columns (for the memory bound's test and the curious). */
  get memoryBytes(): number {
    return this.#cap * 14 + (this.#src6.byteLength + this.#dst6.byteLength);
  }

  /** Forgets every entry (keeps the columns' memory for the next census). */
  clear(): void {
    this.#n = 0;
    this.#n6 = 0;
  }

  #grow(): void {
    const cap = this.#cap * 2;
    const g8 = (a: Uint8Array) => {
      const b = new Uint8Array(cap);
      b.set(a);
      return b;
    };
    this.#flags = g8(this.#flags);
    this.#proto = g8(this.#proto);
    this.#state = g8(this.#state);
    const d = new Uint16Array(cap);
    d.set(this.#dport);
    this.#dport = d;
    const g32 = (a: Uint32Array) => {
      const b = new Uint32Array(cap);
      b.set(a);
      return b;
    };
    this.#timeout = g32(this.#timeout);
    this.#src = g32(this.#src);
    this.#dst = g32(this.#dst);
    this.#cap = cap;
  }

  /**
   * Interns a state name. The tracker's state texts are padded constants
   * ("ESTABLISHED " …): the raw text is the map key (no string is built per
   * entry), and the trimmed name is what is shown and matched.
   */
  #stateId(raw: string): number {
    let i = this.#stateIndex.get(raw);
    if (i === undefined) {
      const name = raw.trim();
      i = this.#stateIndex.get(name);
      if (i === undefined) {
        if (this.#states.length >= 255) throw new RangeError(`Too many distinct state names in a census (at "${name}")`);
        i = this.#states.length;
        this.#states.push(name);
        this.#stateIndex.set(name, i);
      }
      this.#stateIndex.set(raw, i);
    }
    return i;
  }

  #push(
    family: 4 | 6,
    proto: number,
    state: string,
    flags: number,
    timeout: number,
    s0: number,
    s1: number,
    s2: number,
    s3: number,
    d0: number,
    d1: number,
    d2: number,
    d3: number,
    dport: number,
  ): void {
    if (this.#n === this.#cap) this.#grow();
    const i = this.#n++;
    this.#proto[i] = proto;
    this.#state[i] = this.#stateId(state);
    this.#dport[i] = hasPorts(proto) ? dport : 0;
    this.#timeout[i] = Math.max(0, Math.min(0xffffffff, Math.floor(timeout)));
    if (family === 4) {
      this.#flags[i] = flags;
      this.#src[i] = s0 >>> 0;
      this.#dst[i] = d0 >>> 0;
      return;
    }
    this.#flags[i] = flags | F_V6;
    let k = this.#n6++;
    if (k * 4 >= this.#src6.length) {
      const cap = Math.max(64, this.#src6.length * 2);
      const a = new Uint32Array(cap);
      a.set(this.#src6);
      this.#src6 = a;
      const b = new Uint32Array(cap);
      b.set(this.#dst6);
      this.#dst6 = b;
    }
    this.#src[i] = k;
    this.#dst[i] = k;
    k *= 4;
    const s = this.#src6;
    const d = this.#dst6;
    s[k] = s0;
    s[k + 1] = s1;
    s[k + 2] = s2;
    s[k + 3] = s3;
    d[k] = d0;
    d[k + 1] = d1;
    d[k + 2] = d2;
    d[k + 3] = d3;
  }

  /** Adds a plain entry (the census copies it: the object may be reused). */
  add(e: CensusEntry): void {
    const s = e.src;
    const d = e.dst;
    const flags = (e.unreplied ? F_UNREPLIED : 0) | (e.assured ? F_ASSURED : 0);
    this.#push(
      e.family,
      e.proto,
      e.state,
      flags,
      e.timeoutSeconds,
      s[0] ?? 0,
      s[1] ?? 0,
      s[2] ?? 0,
      s[3] ?? 0,
      d[0] ?? 0,
      d[1] ?? 0,
      d[2] ?? 0,
      d[3] ?? 0,
      e.dport,
    );
  }

  /** Adds the entry a tracker's reader is positioned on (its ORIGINAL tuple). */
  addReader(r: CensusReader): void {
    const st = r.status;
    const flags = (st & IPS.SEEN_REPLY ? 0 : F_UNREPLIED) | (st & IPS.ASSURED ? F_ASSURED : 0);
    const t = r.tuple(0);
    this.#push(r.family, r.proto, r.stateName, flags, r.timeoutSeconds, t.s0, t.s1, t.s2, t.s3, t.d0, t.d1, t.d2, t.d3, t.dport);
  }

  /**
   * Entries matching every given condition (for hints that must be true of
   * the entries they cite): protocol number, state name, remaining timeout
   * strictly above `timeoutAbove` seconds, unreplied or not.
   */
  count(where: { proto?: number; state?: string; timeoutAbove?: number; unreplied?: boolean }): number {
    const sid = where.state === undefined ? -1 : (this.#stateIndex.get(where.state) ?? -2);
    if (sid === -2) return 0;
    let n = 0;
    for (let i = 0; i < this.#n; i++) {
      if (where.proto !== undefined && this.#proto[i] !== where.proto) continue;
      if (sid >= 0 && this.#state[i] !== sid) continue;
      if (where.timeoutAbove !== undefined && (this.#timeout[i] as number) <= where.timeoutAbove) continue;
      if (where.unreplied !== undefined && (((this.#flags[i] as number) & F_UNREPLIED) !== 0) !== where.unreplied) continue;
      n++;
    }
    return n;
  }

  /** The top `n` of every dimension (default 10). */
  result(n = 10): CensusResult {
    const total = this.#n;
    const top = Math.max(0, Math.floor(n));
    const flags = this.#flags.subarray(0, total);
    let n4 = 0;
    let unreplied = 0;
    let assured = 0;
    for (let i = 0; i < total; i++) {
      const f = flags[i] as number;
      if (!(f & F_V6)) n4++;
      if (f & F_UNREPLIED) unreplied++;
      if (f & F_ASSURED) assured++;
    }
    const n6 = total - n4;
    const share = (x: number): CensusShare => ({ entries: x, share: total === 0 ? 0 : round6(x / total) });

    // Small dimensions: counted directly, keyed by small integers.
    const fam = new TopN(top);
    if (n4 > 0) fam.offer(n4, 4);
    if (n6 > 0) fam.offer(n6, 6);
    const byProto = new Uint32Array(256);
    const byState = new Map<number, number>();
    for (let i = 0; i < total; i++) {
      const p = this.#proto[i] as number;
      byProto[p] = (byProto[p] as number) + 1;
      const k = p * 256 + (this.#state[i] as number);
      byState.set(k, (byState.get(k) ?? 0) + 1);
    }
    const protos = new TopN(top);
    for (let p = 0; p < 256; p++) if ((byProto[p] as number) > 0) protos.offer(byProto[p] as number, p);
    // States sort by protocol number, then state name.
    const stateKeys = [...byState.keys()].sort(
      (a, b) => (a >> 8) - (b >> 8) || ((this.#states[a & 255] as string) < (this.#states[b & 255] as string) ? -1 : 1),
    );
    const states = new TopN(top);
    for (const k of stateKeys) states.offer(byState.get(k) as number, k);
    const stateText = (k: number) => {
      const name = this.#states[k & 255] as string;
      return name === "" ? censusProtoName(k >> 8) : `${censusProtoName(k >> 8)} ${name}`;
    };

    // IPv4 keys: collected into one column, sorted natively.
    const col4 = new Uint32Array(n4);
    const v4 = (src: Uint32Array, mask: number): TopN => {
      let j = 0;
      for (let i = 0; i < total; i++) if (!((flags[i] as number) & F_V6)) col4[j++] = ((src[i] as number) & mask) >>> 0;
      col4.sort();
      const t = new TopN(top);
      runs(col4, t);
      return t;
    };
    // IPv6 keys: an index sort over the first `words` words; the TopN key is the index of a representative.
    const v6 = (words: Uint32Array, nw: 2 | 4): TopN => {
      const idx = new Uint32Array(this.#n6);
      for (let i = 0; i < idx.length; i++) idx[i] = i;
      const cmp = (a: number, b: number): number => {
        const x = a * 4;
        const y = b * 4;
        for (let w = 0; w < nw; w++) {
          const d = (words[x + w] as number) - (words[y + w] as number);
          if (d !== 0) return d;
        }
        return 0;
      };
      idx.sort(cmp);
      const t = new TopN(top);
      let i = 0;
      while (i < idx.length) {
        let j = i + 1;
        while (j < idx.length && cmp(idx[i] as number, idx[j] as number) === 0) j++;
        t.offer(j - i, idx[i] as number);
        i = j;
      }
      return t;
    };
    const fmt4 = (k: number) => formatIp(4, [k]);
    const net4 = (k: number) => `${formatIp(4, [k])}/24`;
    const fmt6 = (words: Uint32Array) => (k: number) => formatIp(6, words.subarray(k * 4, k * 4 + 4));
    const net6 = (words: Uint32Array) => (k: number) => `${formatIp(6, [words[k * 4] as number, words[k * 4 + 1] as number, 0, 0])}/64`;
    const addrList = (src: Uint32Array, words: Uint32Array, net: boolean): CensusList =>
      merge(top, total, [
        { top: v4(src, net ? 0xffffff00 : 0xffffffff), fmt: net ? net4 : fmt4 },
        { top: v6(words, net ? 2 : 4), fmt: net ? net6(words) : fmt6(words) },
      ]);

    // Destination ports: protocol << 16 | port, for protocols with ports.
    let np = 0;
    for (let i = 0; i < total; i++) if (hasPorts(this.#proto[i] as number)) np++;
    const ports = new Uint32Array(np);
    for (let i = 0, j = 0; i < total; i++) {
      const p = this.#proto[i] as number;
      if (hasPorts(p)) ports[j++] = ((p << 16) | (this.#dport[i] as number)) >>> 0;
    }
    ports.sort();
    const portTop = new TopN(top);
    runs(ports, portTop);

    const single = (t: TopN, fmt: (k: number) => string) => merge(top, total, [{ top: t, fmt }]);
    return {
      entries: total,
      top,
      families: single(fam, (k) => `ipv${k}`),
      protocols: single(protos, censusProtoName),
      states: single(states, stateText),
      sources: addrList(this.#src, this.#src6, false),
      destinations: addrList(this.#dst, this.#dst6, false),
      destination_ports: single(portTop, (k) => `${censusProtoName(k >>> 16)}/${k & 0xffff}`),
      source_networks: addrList(this.#src, this.#src6, true),
      destination_networks: addrList(this.#dst, this.#dst6, true),
      unreplied: share(unreplied),
      assured: share(assured),
    };
  }
}

/** Formats a census as the replay summary's text section (a heading line, then indented lists). */
export function formatCensusText(c: CensusResult, heading: string): string[] {
  const out: string[] = [heading];
  if (c.entries === 0) return out;
  const pct = (s: number) => {
    const v = s * 100;
    return v >= 10 || v === 0 ? `${v.toFixed(0)}%` : `${v.toFixed(1)}%`;
  };
  out.push(
    `  ${pct(c.unreplied.share)} unreplied (${c.unreplied.entries.toLocaleString("en-US")}), ${pct(c.assured.share)} assured (${c.assured.entries.toLocaleString("en-US")})`,
  );
  const lists: Array<[string, CensusList]> = [
    ["states", c.states],
    ["sources", c.sources],
    ["destinations", c.destinations],
    ["destination ports", c.destination_ports],
    ["source networks", c.source_networks],
    ["destination networks", c.destination_networks],
  ];
  for (const [name, l] of lists) {
    if (l.top.length === 0) continue;
    const shown = l.top.length < l.distinct ? `top ${l.top.length} of ${l.distinct.toLocaleString("en-US")}` : l.distinct.toLocaleString("en-US");
    out.push(`  ${name} (${shown})`);
    const kw = Math.max(...l.top.map((i) => i.key.length));
    const nw = Math.max(...l.top.map((i) => i.entries.toLocaleString("en-US").length));
    for (const i of l.top) out.push(`    ${i.key.padEnd(kw)}  ${i.entries.toLocaleString("en-US").padStart(nw)}  ${pct(i.share).padStart(4)}`);
  }
  return out;
}
