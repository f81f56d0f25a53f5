/**
 * IPv4 and IPv6 reassembly in front of the tracker, as nf_defrag_ipv4 /
 * nf_defrag_ipv6 do it (net/ipv4/ip_fragment.c, net/ipv4/inet_fragment.c,
 * net/ipv6/netfilter/nf_conntrack_reasm.c):
 *
 * - Queues are keyed by (src, dst, id, protocol) for IPv4 and (src, dst, id)
 *   for IPv6. A queue's timer starts when it is created and is not pushed back
 *   by later fragments: `ipfrag_time` (30 s) / `nf_conntrack_frag6_timeout`
 *   (60 s). Only an IPv4 "too far" reinit re-arms it.
 * - Placement follows inet_frag_queue_insert(): fragments appended at the end
 *   form "runs"; a fragment entirely inside one run is a duplicate (dropped,
 *   queue kept), any other overlap discards the whole queue (RFC 5722 for
 *   IPv6, and the same code for IPv4 since Linux 4.19).
 * - Length rules: a last fragment that ends before data already seen or
 *   disagrees with an earlier last fragment, data beyond a known end, and
 *   empty fragments are errors (IPv4 discards the queue, IPv6 only the
 *   fragment); IPv4 trims a non-last fragment to a multiple of 8, IPv6 kills
 *   the queue and lets such a fragment through unreassembled.
 * - IPv4 `ipfrag_max_dist` (64): when more than that many fragments from the
 *   same source arrived since this queue's last one, the queue is flushed and
 *   restarted (ip_frag_too_far / ip_frag_reinit).
 * - Memory: every queued fragment costs an approximation of its skb truesize,
 *   every queue a fixed size; while the total is above `high_thresh`
 *   (4 MiB) new fragments are dropped. `low_thresh` has been unused since
 *   Linux 4.17 and is not modelled.
 * - ECN bits are combined with ip_frag_ecn_table (an invalid mix drops the
 *   datagram); a datagram over 65535 bytes is dropped.
 * - The reassembled datagram takes the headers of the first fragment
 *   (offset 0). IPv4: total length, DF (set when the largest fragment had
 *   DF), TOS|CE and a fresh header checksum. IPv6: fragment header removed,
 *   payload length and traffic class fixed.
 * - IPv6 passes through unreassembled what nf_ct_frag6_gather() accepts
 *   untouched: jumbograms, chains it cannot walk, first fragments whose
 *   transport header is cut off, and the misaligned fragments above.
 *
 * Not modelled: the ICMP "fragment reassembly time exceeded" a host sends for
 * expired queues of locally destined datagrams.
 *
 * Time is injected: callers pass the capture (or simulated) time in
 * milliseconds with every packet; nothing here reads a clock.
 */
import { be16, be32 } from "./bytes.js";
import { decodeIpv4, decodeIpv6 } from "./decode.js";
import { Ipv6Walk, ipv6AuthLen, ipv6OptLen, ipv6SkipExthdr } from "./ipv6.js";
import { IPPROTO, LINKTYPE, NEXTHDR } from "./proto.js";
import type { PacketView } from "./view.js";

/** Defragmenter settings, with the kernel's sysctl names and defaults. */
export interface DefragOptions {
  /** `net.ipv4.ipfrag_time` in seconds. Defaults to 30. */
  ipv4Timeout?: number;
  /** `net.ipv4.ipfrag_high_thresh` in bytes. Defaults to 4194304. */
  ipv4HighThresh?: number;
  /** `net.ipv4.ipfrag_max_dist`; 0 disables the check. Defaults to 64. */
  ipv4MaxDist?: number;
  /** `net.netfilter.nf_conntrack_frag6_timeout` in seconds. Defaults to 60. */
  ipv6Timeout?: number;
  /** `net.netfilter.nf_conntrack_frag6_high_thresh` in bytes. Defaults to 4194304. */
  ipv6HighThresh?: number;
}

/** What {@link Defragmenter.offer} did with a packet. */
export const DEFRAG = {
  /** Not a fragment, or let through unreassembled: process the view as it is. */
  PASS: 0,
  /** Consumed (queued or dropped): do not process. */
  STOLEN: 1,
  /** Completed a datagram: the view now describes the whole datagram. */
  REASSEMBLED: 2,
} as const;

/** Why fragments were dropped (a closed set). */
export type DefragDropReason = "overlap" | "duplicate" | "bad-length" | "oversize" | "ecn" | "too-far" | "memory" | "truncated" | "timeout";

/** Counters of a {@link Defragmenter}. */
export interface DefragSummary {
  /** Fragments offered (IPv4 and IPv6). */
  fragments: number;
  ipv4Fragments: number;
  ipv6Fragments: number;
  /** Datagrams reassembled and handed on. */
  reassembled: number;
  /** Fragments let through unreassembled (IPv6 cases the kernel accepts as they are). */
  passed: number;
  /** Fragments currently held in queues. */
  held: number;
  /** Queues currently open. */
  queues: number;
  /** Modelled memory in use, bytes. */
  memory: number;
  /** Queues that expired. */
  timedOutQueues: number;
  /** Fragments dropped, by reason ("timeout" counts fragments of expired queues). */
  dropped: Record<DefragDropReason, number>;
}

const IPQ_SIZE = 192;
const FRAG6_QUEUE_SIZE = 216;

/**
 * Approximate skb truesize of a received frame of `len` bytes: the kmalloc'd
 * data area (frame + NET_SKB_PAD headroom, aligned, + skb_shared_info) plus
 * the sk_buff itself.
 */
function truesize(len: number): number {
  const want = ((len + 14 + 64 + 63) & ~63) + 320;
  let size = 64;
  if (want <= 96) size = want <= 64 ? 64 : 96;
  else if (want <= 192) size = want <= 128 ? 128 : 192;
  else {
    size = 256;
    while (size < want) size *= 2;
  }
  return size + 256;
}

/** ip_frag_ecn_table: index = OR of (1 << ECN codepoint) over the fragments. */
const ECN_TABLE = new Uint8Array(16);
ECN_TABLE[8 | 4] = 3;
ECN_TABLE[8 | 2] = 3;
ECN_TABLE[8 | 4 | 2] = 3;
for (const i of [1 | 8, 1 | 4, 1 | 2, 1 | 4 | 2, 1 | 8 | 4, 1 | 8 | 2, 1 | 8 | 4 | 2]) ECN_TABLE[i] = 0xff;

class Frag {
  constructor(
    readonly off: number,
    readonly end: number,
    readonly data: Uint8Array,
    readonly truesize: number,
  ) {}
}

class Queue {
  readonly frags: Frag[] = [];
  /** Runs of adjacent fragments, as in the kernel's rb-tree: sorted, disjoint [start, end). */
  readonly runStart: number[] = [];
  readonly runEnd: number[] = [];
  /** End of fragments_tail (the highest fragment), or -1. */
  tailEnd = -1;
  len = 0;
  first = false;
  last = false;
  meat = 0;
  ecn = 0;
  maxSize = 0;
  maxDfSize = 0;
  mem = 0;
  rid = 0;
  /** Headers of the offset-0 fragment (IPv4 header / IPv6 unfragmentable part). */
  hdr: Uint8Array | null = null;
  /** IPv6: offset of the next-header byte before the fragment header, relative to the IP header. */
  nhoff = 0;
  /** IPv6: the fragment header's next header in the first fragment. */
  fragNext = 0;
  expires = 0;
  prev: Queue | null = null;
  next: Queue | null = null;

  constructor(
    readonly family: 4 | 6,
    readonly key: string,
  ) {}
}

const INSERT_OK = 0;
const INSERT_DUP = 1;
const INSERT_OVERLAP = 2;

/** Reassembles fragments before tracking. One instance per pipeline. */
export class Defragmenter {
  readonly #v4Timeout: number;
  readonly #v4High: number;
  readonly #v4MaxDist: number;
  readonly #v6Timeout: number;
  readonly #v6High: number;

  readonly #queues = new Map<string, Queue>();
  readonly #peers = new Map<number, number>();
  #head: Queue | null = null;
  #tail: Queue | null = null;
  #mem4 = 0;
  #mem6 = 0;
  #held = 0;
  #buf = new Uint8Array(65536 + 64);

  #fragments4 = 0;
  #fragments6 = 0;
  #reassembled = 0;
  #passed = 0;
  #timedOutQueues = 0;
  readonly #dropped: Record<DefragDropReason, number> = {
    overlap: 0,
    duplicate: 0,
    "bad-length": 0,
    oversize: 0,
    ecn: 0,
    "too-far": 0,
    memory: 0,
    truncated: 0,
    timeout: 0,
  };

  constructor(opts: DefragOptions = {}) {
    this.#v4Timeout = (opts.ipv4Timeout ?? 30) * 1000;
    this.#v4High = opts.ipv4HighThresh ?? 4 * 1024 * 1024;
    this.#v4MaxDist = opts.ipv4MaxDist ?? 64;
    this.#v6Timeout = (opts.ipv6Timeout ?? 60) * 1000;
    this.#v6High = opts.ipv6HighThresh ?? 4 * 1024 * 1024;
  }

  /**
   * Offers a decoded packet at time `nowMs` (milliseconds, the capture clock).
   * Returns a {@link DEFRAG} value. On REASSEMBLED the view points at an
   * internal buffer (valid until the next call) holding the datagram as a
   * raw IP packet (linkType 228 / 229), fully decoded; VLAN fields are kept.
   */
  offer(view: PacketView, nowMs: number): number {
    if (this.#head !== null && this.#head.expires <= nowMs) this.expire(nowMs);
    if (view.family === 4) return view.isFragment ? this.#offer4(view, nowMs) : DEFRAG.PASS;
    if (view.family === 6) return view.fragHdrOff >= 0 ? this.#offer6(view, nowMs) : DEFRAG.PASS;
    return DEFRAG.PASS;
  }

  /** Expires every queue whose timer has run out at `nowMs`. */
  expire(nowMs: number): void {
    let q = this.#head;
    while (q !== null && q.expires <= nowMs) {
      const next = q.next;
      this.#timedOutQueues++;
      this.#kill(q, "timeout");
      q = next;
    }
  }

  /** A snapshot of the counters. */
  summary(): DefragSummary {
    return {
      fragments: this.#fragments4 + this.#fragments6,
      ipv4Fragments: this.#fragments4,
      ipv6Fragments: this.#fragments6,
      reassembled: this.#reassembled,
      passed: this.#passed,
      held: this.#held,
      queues: this.#queues.size,
      memory: this.#mem4 + this.#mem6,
      timedOutQueues: this.#timedOutQueues,
      dropped: { ...this.#dropped },
    };
  }

  // ---- queues ------------------------------------------------------------------

  #find(family: 4 | 6, key: string, nowMs: number): Queue {
    let q = this.#queues.get(key);
    if (q === undefined) {
      q = new Queue(family, key);
      q.expires = nowMs + (family === 4 ? this.#v4Timeout : this.#v6Timeout);
      this.#queues.set(key, q);
      this.#append(q);
      if (family === 4) this.#mem4 += IPQ_SIZE;
      else this.#mem6 += FRAG6_QUEUE_SIZE;
    }
    return q;
  }

  #append(q: Queue): void {
    q.prev = this.#tail;
    q.next = null;
    if (this.#tail !== null) this.#tail.next = q;
    else this.#head = q;
    this.#tail = q;
  }

  #unlink(q: Queue): void {
    if (q.prev !== null) q.prev.next = q.next;
    else this.#head = q.next;
    if (q.next !== null) q.next.prev = q.prev;
    else this.#tail = q.prev;
    q.prev = null;
    q.next = null;
  }

  /** Removes a queue, dropping its fragments with `reason` (null: they were reassembled). */
  #kill(q: Queue, reason: DefragDropReason | null): void {
    this.#unlink(q);
    this.#queues.delete(q.key);
    const n = q.frags.length;
    this.#held -= n;
    if (reason !== null) this.#dropped[reason] += n;
    if (q.family === 4) this.#mem4 -= q.mem + IPQ_SIZE;
    else this.#mem6 -= q.mem + FRAG6_QUEUE_SIZE;
  }

  #drop(reason: DefragDropReason): number {
    this.#dropped[reason]++;
    return DEFRAG.STOLEN;
  }

  /** Drops the fragment and discards its queue. */
  #discard(q: Queue, reason: DefragDropReason): number {
    this.#kill(q, reason);
    return this.#drop(reason);
  }

  /** inet_frag_queue_insert(). */
  #insert(q: Queue, f: Frag): number {
    const off = f.off;
    const end = f.end;
    const frags = q.frags;
    if (frags.length === 0) {
      q.runStart.push(off);
      q.runEnd.push(end);
      frags.push(f);
      q.tailEnd = end;
      return INSERT_OK;
    }
    if (q.tailEnd < end) {
      if (off < q.tailEnd) return INSERT_OVERLAP;
      if (off === q.tailEnd) q.runEnd[q.runEnd.length - 1] = end;
      else {
        q.runStart.push(off);
        q.runEnd.push(end);
      }
      frags.push(f);
      q.tailEnd = end;
      return INSERT_OK;
    }
    // Runs are disjoint: the fragment touches none (insert), lies inside exactly one (duplicate), or overlaps.
    const rs = q.runStart;
    const re = q.runEnd;
    let i = 0;
    while (i < rs.length && (re[i] as number) <= off) i++;
    if (i < rs.length && (rs[i] as number) < end) {
      return off >= (rs[i] as number) && end <= (re[i] as number) ? INSERT_DUP : INSERT_OVERLAP;
    }
    rs.splice(i, 0, off);
    re.splice(i, 0, end);
    let j = 0;
    while (j < frags.length && (frags[j] as Frag).off < off) j++;
    frags.splice(j, 0, f);
    return INSERT_OK;
  }

  // ---- IPv4 ----------------------------------------------------------------------

  #offer4(view: PacketView, nowMs: number): number {
    this.#fragments4++;
    const d = view.data;
    const l3 = view.l3Off;
    const ihl = view.l3HdrLen;
    const tot = ihl + view.l4Len;
    if (view.l3Len < tot) return this.#drop("truncated");
    // inet_frag_find() refuses new work while over the high threshold.
    if (this.#mem4 > this.#v4High) return this.#drop("memory");
    const src = view.src[0] as number;
    const key = `4:${src}:${view.dst[0] as number}:${view.ipId}:${view.proto}`;
    const q = this.#find(4, key, nowMs);

    if (this.#v4MaxDist > 0) {
      const rid = (this.#peers.get(src) ?? 0) + 1;
      this.#peers.set(src, rid);
      const start = q.rid;
      q.rid = rid;
      if (q.frags.length > 0 && rid - start > this.#v4MaxDist) this.#reinit(q, nowMs);
    }

    const offset = view.fragOffset;
    const tos = d[l3 + 1] as number;
    const df = ((d[l3 + 6] as number) & 0x40) !== 0;
    let end = offset + tot - ihl;
    if (!view.moreFragments) {
      if (end < q.len || (q.last && end !== q.len)) return this.#discard(q, "bad-length");
      q.last = true;
      q.len = end;
    } else {
      end &= ~7;
      if (end > q.len) {
        if (q.last) return this.#discard(q, "bad-length");
        q.len = end;
      }
    }
    if (end === offset) return this.#discard(q, "bad-length");

    const start = view.l4Off;
    const size = truesize(tot);
    const f = new Frag(offset, end, d.slice(start, start + (end - offset)), size);
    const r = this.#insert(q, f);
    if (r === INSERT_DUP) return this.#drop("duplicate");
    if (r === INSERT_OVERLAP) return this.#discard(q, "overlap");

    this.#held++;
    q.meat += end - offset;
    q.ecn |= 1 << (tos & 3);
    q.mem += size;
    this.#mem4 += size;
    if (offset === 0) {
      q.first = true;
      q.hdr = d.slice(l3, l3 + ihl);
    }
    const fragsize = end - offset + ihl;
    if (fragsize > q.maxSize) q.maxSize = fragsize;
    if (df && fragsize > q.maxDfSize) q.maxDfSize = fragsize;
    if (q.first && q.last && q.meat === q.len) return this.#reasm4(q, view);
    return DEFRAG.STOLEN;
  }

  /** ip_frag_reinit(): flush the queue and restart its timer. */
  #reinit(q: Queue, nowMs: number): void {
    const n = q.frags.length;
    this.#held -= n;
    this.#dropped["too-far"] += n;
    this.#mem4 -= q.mem;
    q.frags.length = 0;
    q.runStart.length = 0;
    q.runEnd.length = 0;
    q.tailEnd = -1;
    q.len = 0;
    q.first = false;
    q.last = false;
    q.meat = 0;
    q.ecn = 0;
    q.mem = 0;
    q.hdr = null;
    q.expires = nowMs + this.#v4Timeout;
    this.#unlink(q);
    this.#append(q);
  }

  #reasm4(q: Queue, view: PacketView): number {
    const hdr = q.hdr as Uint8Array;
    const n = q.frags.length;
    this.#kill(q, null);
    const ecn = ECN_TABLE[q.ecn] as number;
    if (ecn === 0xff) {
      this.#dropped.ecn += n;
      return DEFRAG.STOLEN;
    }
    const ihl = hdr.length;
    const len = ihl + q.len;
    if (len > 65535) {
      this.#dropped.oversize += n;
      return DEFRAG.STOLEN;
    }
    const b = this.#buffer(len);
    b.set(hdr, 0);
    for (const f of q.frags) b.set(f.data, ihl + f.off);
    b[1] = (b[1] as number) | ecn;
    b[2] = len >> 8;
    b[3] = len & 0xff;
    b[6] = q.maxDfSize === q.maxSize ? 0x40 : 0;
    b[7] = 0;
    b[10] = 0;
    b[11] = 0;
    let s = 0;
    for (let i = 0; i < ihl; i += 2) s += be16(b, i);
    while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
    s = ~s & 0xffff;
    b[10] = s >> 8;
    b[11] = s & 0xff;
    this.#reassembled++;
    this.#emit(view, b, len, 4);
    return DEFRAG.REASSEMBLED;
  }

  // ---- IPv6 ----------------------------------------------------------------------

  #offer6(view: PacketView, nowMs: number): number {
    const d = view.data;
    const l3 = view.l3Off;
    const plen = be16(d, l3 + 4);
    // Jumbo payload inhibits the fragment header.
    if (plen === 0) return DEFRAG.PASS;
    const l3End = l3 + 40 + plen;
    const capEnd = l3 + view.l3Len;

    const fhoff = findPrevFhdr(d, l3, plen, capEnd);
    if (fhoff === FHDR_NONE) return DEFRAG.PASS;
    if (fhoff === FHDR_TRUNCATED) {
      this.#fragments6++;
      return this.#drop("truncated");
    }
    const prevNh = prevNhOff;

    // RFC 8200 4.5: a first fragment without the whole transport header is let through.
    this.#fragments6++;
    if (thdrTruncated(d, fhoff, l3End, capEnd)) {
      this.#passed++;
      return DEFRAG.PASS;
    }
    if (fhoff + 8 > l3End) return this.#drop("truncated");
    if (l3End > capEnd) return this.#drop("truncated");
    if (this.#mem6 > this.#v6High) return this.#drop("memory");

    const id = be32(d, fhoff + 4);
    const s = view.src;
    const t = view.dst;
    const key = `6:${s[0]}:${s[1]}:${s[2]}:${s[3]}:${t[0]}:${t[1]}:${t[2]}:${t[3]}:${id}`;
    const q = this.#find(6, key, nowMs);

    const fo = be16(d, fhoff + 2);
    const offset = fo & 0xfff8;
    const end = offset + (plen - (fhoff + 8 - (l3 + 40)));
    if (end < 0 || end > 65535) return this.#drop("bad-length");
    const tclass = (((d[l3] as number) & 0x0f) << 4) | ((d[l3 + 1] as number) >> 4);

    if ((fo & 1) === 0) {
      if (end < q.len || (q.last && end !== q.len)) return this.#drop("bad-length");
      q.last = true;
      q.len = end;
    } else {
      if ((end & 7) !== 0) {
        // RFC 2460 says parameter problem; conntrack kills the queue and accepts the packet as it is.
        this.#kill(q, "bad-length");
        this.#passed++;
        return DEFRAG.PASS;
      }
      if (end > q.len) {
        if (q.last) return this.#drop("bad-length");
        q.len = end;
      }
    }
    if (end === offset) return this.#drop("bad-length");

    const dataStart = fhoff + 8;
    const size = truesize(40 + plen);
    const f = new Frag(offset, end, d.slice(dataStart, dataStart + (end - offset)), size);
    const r = this.#insert(q, f);
    if (r === INSERT_DUP) return this.#drop("duplicate");
    if (r === INSERT_OVERLAP) return this.#discard(q, "overlap");

    this.#held++;
    q.meat += end - offset;
    q.ecn |= 1 << (tclass & 3);
    if (plen > q.maxSize) q.maxSize = plen;
    q.mem += size;
    this.#mem6 += size;
    if (offset === 0) {
      q.first = true;
      q.hdr = d.slice(l3, fhoff);
      q.nhoff = prevNh - l3;
      q.fragNext = d[fhoff] as number;
    }
    if (q.first && q.last && q.meat === q.len) return this.#reasm6(q, view);
    return DEFRAG.STOLEN;
  }

  #reasm6(q: Queue, view: PacketView): number {
    const hdr = q.hdr as Uint8Array;
    const n = q.frags.length;
    this.#kill(q, null);
    const ecn = ECN_TABLE[q.ecn] as number;
    if (ecn === 0xff) {
      this.#dropped.ecn += n;
      return DEFRAG.STOLEN;
    }
    const payload = hdr.length - 40 + q.len;
    if (payload > 65535) {
      this.#dropped.oversize += n;
      return DEFRAG.STOLEN;
    }
    const len = 40 + payload;
    const b = this.#buffer(len);
    b.set(hdr, 0);
    for (const f of q.frags) b.set(f.data, hdr.length + f.off);
    b[q.nhoff] = q.fragNext;
    b[4] = payload >> 8;
    b[5] = payload & 0xff;
    // Traffic class |= ECN (ipv6_change_dsfield(hdr, 0xff, ecn)).
    b[1] = (b[1] as number) | ((ecn & 0x0f) << 4);
    this.#reassembled++;
    this.#emit(view, b, len, 6);
    return DEFRAG.REASSEMBLED;
  }

  // ---- output ----------------------------------------------------------------------

  #buffer(len: number): Uint8Array {
    if (this.#buf.length < len) this.#buf = new Uint8Array(len);
    return this.#buf;
  }

  /** Re-points the view at the reassembled datagram and decodes it, keeping the link-layer facts. */
  #emit(view: PacketView, b: Uint8Array, len: number, family: 4 | 6): void {
    const vlan = view.vlan;
    const tags = view.vlanTags;
    view.resetDecoded();
    view.vlan = vlan;
    view.vlanTags = tags;
    view.data = b;
    view.frameOff = 0;
    view.capLen = len;
    view.wireLen = len;
    view.linkType = family === 4 ? LINKTYPE.IPV4 : LINKTYPE.IPV6;
    if (family === 4) decodeIpv4(view, b, 0, len, len, 0);
    else decodeIpv6(view, b, 0, len, len);
    view.reassembled = true;
  }
}

/** findPrevFhdr() results other than an offset. */
const FHDR_NONE = -1;
const FHDR_TRUNCATED = -2;
/** Set by findPrevFhdr(): offset of the next-header byte that names the fragment header. */
let prevNhOff = 0;

/**
 * find_prev_fhdr() of nf_conntrack_reasm.c: the fragment header may only
 * follow hop-by-hop, routing, AH and destination options headers, counted
 * against the payload length. Returns the fragment header's offset and leaves
 * the offset of the next-header byte that names it in `prevNhOff`;
 * FHDR_NONE when there is none to reassemble (the packet passes), and
 * FHDR_TRUNCATED when a header before it is not in the capture (the kernel's
 * skb always holds it; a snapped capture does not).
 */
function findPrevFhdr(d: Uint8Array, l3: number, plen: number, capEnd: number): number {
  let nh = d[l3 + 6] as number;
  let prevNh = l3 + 6;
  let start = l3 + 40;
  let len = plen;
  while (nh !== NEXTHDR.FRAGMENT) {
    if (!(nh === NEXTHDR.HOP || nh === NEXTHDR.ROUTING || nh === NEXTHDR.AUTH || nh === NEXTHDR.DEST)) return FHDR_NONE;
    if (len < 2) return FHDR_NONE;
    if (start + 2 > capEnd) return FHDR_TRUNCATED;
    const hlen = nh === NEXTHDR.AUTH ? ipv6AuthLen(d, start) : ipv6OptLen(d, start);
    prevNh = start;
    nh = d[start] as number;
    len -= hlen;
    start += hlen;
  }
  if (len < 0) return FHDR_NONE;
  prevNhOff = prevNh;
  return start;
}

const thdrWalk = new Ipv6Walk();

/**
 * ipv6frag_thdr_truncated(): for a first fragment, walks on from the fragment
 * header and tells whether the transport header (TCP 20, UDP 8, ICMPv6 8,
 * else 1 byte) runs past the packet.
 */
function thdrTruncated(d: Uint8Array, fhoff: number, l3End: number, capEnd: number): boolean {
  const p = ipv6SkipExthdr(d, fhoff, l3End < capEnd ? l3End : capEnd, NEXTHDR.FRAGMENT, thdrWalk);
  if (p < 0 || thdrWalk.nexthdr === NEXTHDR.FRAGMENT) return false;
  const nh = thdrWalk.nexthdr;
  const need = nh === IPPROTO.TCP ? 20 : nh === IPPROTO.UDP || nh === IPPROTO.ICMPV6 ? 8 : 1;
  return p + need > l3End;
}
