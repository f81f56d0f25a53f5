/**
 * nf_conntrack_ftp: the commands and replies of an FTP control connection
 * that announce a data connection, parsed per packet as the kernel parses
 * them, and the expectation each one registers.
 *
 * - Only packets of an established connection with payload are read, and
 *   only when their sequence number is one the helper recorded as following
 *   a line end in that direction (the first line each way is never read:
 *   nothing was recorded yet). After every packet that ends in "\n" the
 *   sequence number after it is remembered (two per direction, the oldest
 *   replaced only by a later one).
 * - Client to server: "PORT h1,h2,h3,h4,p1,p2\r" and "EPRT |1|addr|port|"
 *   (|2| for IPv6); server to client: "227 " with the first digit anywhere
 *   after it (RFC 1123) and "229 (|||port|)". Case-insensitive prefixes.
 * - A packet that is a prefix of a pattern, or matches a pattern but not its
 *   numbers, is dropped ("partial matching").
 * - The expectation: from the other end's address (any port) to the
 *   address in the command and its port. An address in the command other
 *   than the sender's registers nothing (the module's loose=0 default).
 * - With NAT on the master the expected connection follows it
 *   (nf_nat_follow_master); nf_nat_ftp's payload rewrite (and the sequence
 *   adjustment it causes) is not modelled: the packet is left as captured.
 * Policy: one expectation per connection (a new one evicts the old), 5 minutes.
 */
import { IPPROTO } from "../../packet/view.js";
import type { PacketView } from "../../packet/view.js";
import { CTINFO, IPS } from "../constants.js";
import type { ConntrackHelper, HelperContext } from "./helper.js";

const NUM_SEQ_TO_REMEMBER = 2;

/** struct nf_ct_ftp_master. */
export interface FtpState {
  /** Sequence numbers after a line end, per direction (valid up to `num`). */
  readonly seqAftNl: [Uint32Array, Uint32Array];
  readonly num: Uint8Array;
}

/** A command parsed from the payload (struct nf_conntrack_man). */
interface Cmd {
  family: 4 | 6;
  readonly addr: Uint32Array;
  port: number;
}

type GetNum = (d: Uint8Array, start: number, dlen: number, cmd: Cmd, term: number) => number;

interface Search {
  readonly pattern: string;
  readonly skip: number;
  readonly term: number;
  readonly getnum: GetNum;
}

const SP = 0x20;
const CR = 0x0d;
const LF = 0x0a;

const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;

/** try_number: `size` numbers separated by `sep`, ended by `term` (or anything when term is 0). Returns the length or 0. */
function tryNumber(d: Uint8Array, start: number, dlen: number, out: Uint32Array, size: number, sep: number, term: number): number {
  out.fill(0, 0, size);
  let i = 0;
  for (let len = 0; len < dlen && i < size; len++) {
    const c = d[start + len] as number;
    if (isDigit(c)) out[i] = ((out[i] as number) * 10 + c - 0x30) >>> 0;
    else if (c === sep) i++;
    else {
      if ((c === term || term === 0) && i === size - 1) return len;
      return 0;
    }
  }
  return 0;
}

const nums = new Uint32Array(6);

/** try_rfc959: "h1,h2,h3,h4,p1,p2". */
const tryRfc959: GetNum = (d, start, dlen, cmd, term) => {
  const length = tryNumber(d, start, dlen, nums, 6, 0x2c, term);
  if (length === 0) return 0;
  cmd.addr[0] =
    ((((nums[0] as number) & 0xff) << 24) | (((nums[1] as number) & 0xff) << 16) | (((nums[2] as number) & 0xff) << 8) | ((nums[3] as number) & 0xff)) >>> 0;
  cmd.port = ((((nums[4] as number) & 0xff) << 8) | ((nums[5] as number) & 0xff)) & 0xffff;
  return length;
};

/** try_rfc1123: the numbers start at the first digit. */
const tryRfc1123: GetNum = (d, start, dlen, cmd) => {
  let i = 0;
  while (i < dlen && !isDigit(d[start + i] as number)) i++;
  if (i === dlen) return 0;
  return tryRfc959(d, start + i, dlen - i, cmd, 0);
};

/** get_port: digits up to `delim`; returns the index after the delimiter, or 0. */
function getPort(d: Uint8Array, base: number, from: number, dlen: number, delim: number, cmd: Cmd): number {
  let port = 0;
  for (let i = from; i < dlen; i++) {
    const c = d[base + i] as number;
    if (c === delim) {
      if (port === 0) break;
      cmd.port = port & 0xffff;
      return i + 1;
    }
    if (isDigit(c)) port = (port * 10 + c - 0x30) & 0xffff;
    else break;
  }
  return 0;
}

/** in6_pton up to `delim`: returns the text length, or 0 when it is not an IPv6 address. */
function parseIpv6(d: Uint8Array, start: number, dlen: number, delim: number, out: Uint32Array): number {
  let end = 0;
  while (end < dlen && d[start + end] !== delim) end++;
  if (end === dlen) return 0;
  let text = "";
  for (let i = 0; i < end; i++) text += String.fromCharCode(d[start + i] as number);
  const w = ipv6Words(text);
  if (w === null) return 0;
  out.set(w);
  return end;
}

function ipv6Words(text: string): Uint32Array | null {
  if (!/^[0-9a-fA-F:.]+$/.test(text)) return null;
  let head = text;
  const groups: number[] = [];
  const dot = text.lastIndexOf(":");
  const tail = text.slice(dot + 1);
  if (tail.includes(".")) {
    const q = tail.split(".").map(Number);
    if (q.length !== 4 || q.some((x) => !Number.isInteger(x) || x > 255)) return null;
    head = text.slice(0, dot + 1) + `${(((q[0] as number) << 8) | (q[1] as number)).toString(16)}:${(((q[2] as number) << 8) | (q[3] as number)).toString(16)}`;
  }
  const parts = head.split("::");
  if (parts.length > 2) return null;
  const parse = (s: string): number[] | null => (s === "" ? [] : s.split(":").map((g) => (/^[0-9a-fA-F]{1,4}$/.test(g) ? parseInt(g, 16) : -1)));
  const a = parse(parts[0] as string);
  const b = parts.length === 2 ? parse(parts[1] as string) : [];
  if (a === null || b === null || a.includes(-1) || b.includes(-1)) return null;
  if (parts.length === 1 ? a.length !== 8 : a.length + b.length > 7) return null;
  groups.push(...a, ...new Array<number>(8 - a.length - b.length).fill(0), ...b);
  const w = new Uint32Array(4);
  for (let i = 0; i < 4; i++) w[i] = (((groups[2 * i] as number) << 16) | (groups[2 * i + 1] as number)) >>> 0;
  return w;
}

/** try_eprt: "|1|132.235.1.2|6275|" or "|2|3ffe::1|6275|". */
const tryEprt: GetNum = (d, start, dlen, cmd) => {
  if (dlen <= 3) return 0;
  const delim = d[start] as number;
  if (isDigit(delim) || delim < 33 || delim > 126 || d[start + 2] !== delim) return 0;
  const proto = d[start + 1] as number;
  if ((cmd.family === 4 && proto !== 0x31) || (cmd.family === 6 && proto !== 0x32)) return 0;
  let length: number;
  if (proto === 0x31) {
    const q = new Uint32Array(4);
    length = tryNumber(d, start + 3, dlen - 3, q, 4, 0x2e, delim);
    if (length !== 0)
      cmd.addr[0] =
        ((((q[0] as number) & 0xff) << 24) | (((q[1] as number) & 0xff) << 16) | (((q[2] as number) & 0xff) << 8) | ((q[3] as number) & 0xff)) >>> 0;
  } else {
    length = parseIpv6(d, start + 3, dlen - 3, delim, cmd.addr);
  }
  if (length === 0) return 0;
  return getPort(d, start, 3 + length + 1, dlen, delim, cmd);
};

/** try_epsv_response: "|||6446|". */
const tryEpsv: GetNum = (d, start, dlen, cmd) => {
  if (dlen <= 3) return 0;
  const delim = d[start] as number;
  if (isDigit(delim) || delim < 33 || delim > 126 || d[start + 1] !== delim || d[start + 2] !== delim) return 0;
  return getPort(d, start, 3, dlen, delim, cmd);
};

const SEARCH: readonly [readonly Search[], readonly Search[]] = [
  [
    { pattern: "PORT", skip: SP, term: CR, getnum: tryRfc959 },
    { pattern: "EPRT", skip: SP, term: CR, getnum: tryEprt },
  ],
  [
    { pattern: "227 ", skip: 0, term: 0, getnum: tryRfc1123 },
    { pattern: "229 ", skip: 0x28, term: 0x29, getnum: tryEpsv },
  ],
];

const lower = (c: number): number => (c >= 0x41 && c <= 0x5a ? c + 32 : c);

function caseEq(d: Uint8Array, start: number, pattern: string, n: number): boolean {
  for (let i = 0; i < n; i++) if (lower(d[start + i] as number) !== lower(pattern.charCodeAt(i))) return false;
  return true;
}

/** find_pattern: 1 found, 0 not this pattern, -1 partial (the packet is dropped). */
function findPattern(d: Uint8Array, start: number, dlen: number, s: Search, cmd: Cmd): number {
  const plen = s.pattern.length;
  if (dlen <= plen) return caseEq(d, start, s.pattern, dlen) ? -1 : 0;
  if (!caseEq(d, start, s.pattern, plen)) return 0;
  let i = plen;
  if (s.skip !== 0) {
    for (; d[start + i] !== s.skip; i++) if (i === dlen - 1) return -1;
    i++;
  }
  const numlen = s.getnum(d, start + i, dlen - i, cmd, s.term);
  return numlen === 0 ? -1 : 1;
}

const before = (a: number, b: number): boolean => ((a - b) | 0) < 0;
const after = (a: number, b: number): boolean => ((b - a) | 0) < 0;

function findNlSeq(seq: number, st: FtpState, dir: 0 | 1): boolean {
  const arr = st.seqAftNl[dir];
  for (let i = 0; i < (st.num[dir] as number); i++) if (arr[i] === seq) return true;
  return false;
}

function updateNlSeq(nlSeq: number, st: FtpState, dir: 0 | 1): void {
  const arr = st.seqAftNl[dir];
  const n = st.num[dir] as number;
  for (let i = 0; i < n; i++) if (arr[i] === nlSeq) return;
  if (n < NUM_SEQ_TO_REMEMBER) {
    arr[n] = nlSeq;
    st.num[dir] = n + 1;
    return;
  }
  const oldest = before(arr[0] as number, arr[1] as number) ? 0 : 1;
  if (after(nlSeq, arr[oldest] as number)) arr[oldest] = nlSeq;
}

const cmd: Cmd = { family: 4, addr: new Uint32Array(4), port: 0 };

export const ftpHelper: ConntrackHelper<FtpState> = {
  name: "ftp",
  proto: IPPROTO.TCP,
  maxExpected: 1,
  timeoutSec: 5 * 60,
  newState: () => ({ seqAftNl: [new Uint32Array(NUM_SEQ_TO_REMEMBER), new Uint32Array(NUM_SEQ_TO_REMEMBER)], num: new Uint8Array(2) }),
  help(ctx: HelperContext, p: PacketView, slot: number, ctinfo: number, dir: 0 | 1, st: FtpState): boolean {
    // Until there has been traffic both ways, don't look in packets.
    if (ctinfo !== CTINFO.ESTABLISHED && ctinfo !== CTINFO.ESTABLISHED_REPLY) return true;
    if (p.tcpHdrLen === 0) return true;
    const start = p.l4Off + p.tcpHdrLen;
    // skb->len is the whole datagram; a capture snapped short holds only part of it.
    const datalen = Math.min(p.payloadLen, p.data.length - start);
    if (datalen <= 0) return true;
    const d = p.data;
    const endsInNl = d[start + datalen - 1] === LF;
    const seq = (p.seq + p.payloadLen) >>> 0;
    let ret = true;
    if (findNlSeq(p.seq >>> 0, st, dir)) {
      const fam = ctx.familyOf(slot);
      cmd.family = fam;
      cmd.addr.set(ctx.addr(slot, dir, "src"));
      cmd.port = 0;
      let found = 0;
      let which = SEARCH[dir][0] as Search;
      for (const s of SEARCH[dir]) {
        found = findPattern(d, start, datalen, s, cmd);
        which = s;
        if (found !== 0) break;
      }
      if (found === -1) {
        ctx.log(slot, p, `partial matching of \`${which.pattern}'`);
        return false;
      }
      if (found === 1) {
        const sender = ctx.addr(slot, dir, "src");
        const n = fam === 4 ? 1 : 4;
        let same = true;
        for (let i = 0; i < n; i++) if (cmd.addr[i] !== sender[i]) same = false;
        // loose=0: a command naming another host than its sender opens nothing.
        if (same) {
          const other: 0 | 1 = dir === 0 ? 1 : 0;
          const ok = ctx.expectRelated(
            {
              family: fam,
              proto: IPPROTO.TCP,
              src: ctx.addr(slot, other, "src"),
              srcMasked: true,
              sport: 0,
              sportMasked: false,
              dst: ctx.addr(slot, other, "dst"),
              dport: cmd.port,
              zone: ctx.zoneOf(slot),
              master: slot,
              natFollow: (ctx.statusOf(slot) & (IPS.SRC_NAT | IPS.DST_NAT)) !== 0,
              savedPort: cmd.port,
              natDir: other,
            },
            slot,
          );
          if (!ok) {
            ctx.log(slot, p, "cannot add expectation");
            ret = false;
          }
        }
      }
    }
    if (endsInNl) updateNlSeq(seq, st, dir);
    return ret;
  },
};
