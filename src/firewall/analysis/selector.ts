/**
 * The traffic selector of `ctlab rules notrack --for 'udp dport 53'`: a small
 * nft-like language parsed into a traffic box, errors naming the column.
 */
import { RulesetSyntaxError, q, textPos } from "../errors.js";
import { AddrSet, NumSet, PORT_PROTOS, PROTO_NUM, parseAddr, parseCidr, parseIface } from "../values.js";
import type { IfacePattern } from "../values.js";
import type { TrafficBox } from "./box.js";

export const SEL_FILE = "<selector>";

interface SelTok {
  readonly text: string;
  readonly col: number;
}

function selTokens(s: string): SelTok[] {
  const out: SelTok[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i] as string;
    if (c === " " || c === "\t") {
      i++;
      continue;
    }
    if (c === "{" || c === "}" || c === ",") {
      out.push({ text: c, col: i + 1 });
      i++;
      continue;
    }
    const start = i;
    let t = "";
    if (c === '"') {
      i++;
      while (i < s.length && s[i] !== '"') t += s[i++] as string;
      if (i >= s.length) throw new RulesetSyntaxError(textPos(SEL_FILE, 1, start + 1), "unterminated quoted string");
      i++;
    } else {
      while (i < s.length && !" \t{},".includes(s[i] as string)) t += s[i++] as string;
    }
    out.push({ text: t, col: start + 1 });
  }
  return out;
}

/**
 * Parses a small nft-like traffic selector: `[ip|ip6] [tcp|udp|sctp|udplite|icmp|icmpv6]
 * [sport P] [dport P] [saddr A] [daddr A] [iif NAME] [oif NAME]`, where P is a
 * port, a range `a-b` or a set `{ a, b-c }`, and A an address, prefix or range
 * (or a set of them).
 * @throws {RulesetSyntaxError} naming the column in `<selector>`.
 */
export function parseSelector(text: string): TrafficBox {
  const toks = selTokens(text);
  let i = 0;
  let family: 0 | 4 | 6 = 0;
  let protos: NumSet | null = null;
  let sport: NumSet | null = null;
  let dport: NumSet | null = null;
  let saddr: AddrSet | null = null;
  let daddr: AddrSet | null = null;
  let iif: IfacePattern[] | null = null;
  let oif: IfacePattern[] | null = null;
  // Declared with its type so that TypeScript narrows after a call (control flow needs an explicit `never`).
  const fail: (t: SelTok | undefined, msg: string) => never = (t, msg) => {
    throw new RulesetSyntaxError(textPos(SEL_FILE, 1, t ? t.col : text.length + 1), msg, "selector");
  };
  const values = (key: SelTok): SelTok[] => {
    const t = toks[i++];
    if (!t) return fail(undefined, `missing value after ${q(key.text)}`);
    if (t.text !== "{") {
      if (t.text === "}" || t.text === ",") fail(t, `unexpected ${q(t.text)}`);
      // Allow comma lists without braces: dport 53,853
      const list = [t];
      while (toks[i]?.text === ",") {
        i++;
        const n = toks[i++];
        if (!n || n.text === "{" || n.text === "}" || n.text === ",") fail(n, "expected a value after a comma");
        list.push(n);
      }
      return list;
    }
    const list: SelTok[] = [];
    for (;;) {
      const v = toks[i++];
      if (!v) return fail(undefined, `missing ${q("}")}`);
      if (v.text === "}") break;
      if (v.text === ",") continue;
      if (v.text === "{") fail(v, "nested sets are not allowed");
      list.push(v);
    }
    if (list.length === 0) fail(t, "empty set");
    return list;
  };
  const ports = (key: SelTok): NumSet => {
    const pairs: number[] = [];
    for (const v of values(key)) {
      const m = /^([0-9]{1,5})(?:[-:]([0-9]{1,5}))?$/.exec(v.text);
      if (!m) fail(v, `invalid port ${q(v.text)}`);
      const lo = Number(m[1]);
      const hi = m[2] === undefined ? lo : Number(m[2]);
      if (lo > 65535 || hi > 65535) fail(v, `invalid port ${q(v.text)}`);
      if (hi < lo) fail(v, `invalid port range ${q(v.text)}`);
      pairs.push(lo, hi);
    }
    return new NumSet(pairs);
  };
  const addrs = (key: SelTok): AddrSet => {
    const ranges: Array<{ lo: Uint32Array; hi: Uint32Array }> = [];
    const texts: string[] = [];
    let fam: 4 | 6 | 0 = family;
    for (const v of values(key)) {
      const dash = v.text.indexOf("-");
      if (dash > 0) {
        const a = parseAddr(v.text.slice(0, dash));
        const b = parseAddr(v.text.slice(dash + 1));
        if (!a || !b || a.family !== b.family || (fam && a.family !== fam)) fail(v, `invalid address range ${q(v.text)}`);
        fam = a.family;
        ranges.push({ lo: a.words, hi: b.words });
      } else {
        const c = parseCidr(v.text, fam);
        if (!c) fail(v, `invalid address ${q(v.text)}`);
        fam = c.family;
        ranges.push({ lo: c.lo, hi: c.hi });
      }
      texts.push(v.text);
    }
    family = fam || 4;
    return new AddrSet(fam || 4, ranges, texts);
  };
  const seen = new Set<string>();
  while (i < toks.length) {
    const t = toks[i++] as SelTok;
    const k = t.text.toLowerCase();
    const once = (name: string) => {
      if (seen.has(name)) fail(t, `${q(name)} given twice`);
      seen.add(name);
    };
    switch (k) {
      case "ip":
      case "ipv4":
        once("family");
        family = 4;
        break;
      case "ip6":
      case "ipv6":
        once("family");
        family = 6;
        break;
      case "inet":
        once("family");
        break;
      case "tcp":
      case "udp":
      case "sctp":
      case "udplite":
      case "dccp":
      case "icmp":
      case "icmpv6":
      case "ipv6-icmp":
        once("protocol");
        protos = NumSet.of(PROTO_NUM[k] as number);
        if (k === "icmp") family = family || 4;
        if (k === "icmpv6" || k === "ipv6-icmp") family = 6;
        break;
      case "l4proto":
      case "proto": {
        once("protocol");
        const pairs: number[] = [];
        for (const v of values(t)) {
          const n = PROTO_NUM[v.text.toLowerCase()] ?? (/^[0-9]{1,3}$/.test(v.text) ? Number(v.text) : undefined);
          if (n === undefined || n > 255) fail(v, `unknown protocol ${q(v.text)}`);
          pairs.push(n, n);
        }
        protos = new NumSet(pairs);
        break;
      }
      case "sport":
        once("sport");
        sport = ports(t);
        break;
      case "dport":
        once("dport");
        dport = ports(t);
        break;
      case "saddr":
        once("saddr");
        saddr = addrs(t);
        break;
      case "daddr":
        once("daddr");
        daddr = addrs(t);
        break;
      case "iif":
      case "iifname":
        once("iif");
        iif = values(t).map((v) => parseIface(v.text.replace(/\+$/, "*"), "*"));
        break;
      case "oif":
      case "oifname":
        once("oif");
        oif = values(t).map((v) => parseIface(v.text.replace(/\+$/, "*"), "*"));
        break;
      default:
        fail(t, `unknown selector word ${q(t.text)}: expected a protocol, sport, dport, saddr, daddr, iif or oif`);
    }
  }
  if ((sport || dport) && !protos) fail(toks[0], "ports need a protocol (tcp, udp, sctp, udplite or dccp)");
  if ((sport || dport) && protos && !protos.pairs().every(([lo, hi]) => lo === hi && PORT_PROTOS.includes(lo))) {
    fail(toks[0], "ports need a protocol with ports (tcp, udp, sctp, udplite or dccp)");
  }
  if (saddr && daddr && saddr.family !== daddr.family) fail(toks[0], "source and destination addresses of different families");
  if (toks.length === 0) fail(undefined, "empty selector: name at least a protocol");
  return { family, protos, sport, dport, saddr, daddr, iif, oif, approximate: false };
}
