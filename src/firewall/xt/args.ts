/**
 * Argument parsers shared by the iptables match and target modules: ports,
 * flags, addresses, value/mask pairs, rates, ICMP types, NAT ranges. Each
 * error names the token's line and column.
 */
import { RulesetSyntaxError, SKIP_HINT, q, textPos } from "../errors.js";
import type { Match, NatSpec } from "../model.js";
import { AddrSet, ICMPV6_NAMES, ICMP_NAMES, NumSet, PORT_PROTOS, parseAddr, parseCidr, parseUint } from "../values.js";
import type { Ctx, Opt, ProtoInfo, Tok } from "./types.js";

/** Small service-name table for ports written by name (iptables resolves them with getservbyname). */
const SERVICES: Readonly<Record<string, number>> = {
  ftp: 21,
  ssh: 22,
  telnet: 23,
  smtp: 25,
  domain: 53,
  bootps: 67,
  bootpc: 68,
  tftp: 69,
  http: 80,
  www: 80,
  pop3: 110,
  ntp: 123,
  imap: 143,
  snmp: 161,
  ldap: 389,
  https: 443,
  submission: 587,
  imaps: 993,
  pop3s: 995,
  openvpn: 1194,
  mysql: 3306,
  postgresql: 5432,
  "http-alt": 8080,
};

export function unsupportedOpt(ctx: Ctx, o: Opt, owner: string): RulesetSyntaxError {
  return new RulesetSyntaxError(
    textPos(ctx.file, ctx.lineNo, o.tok.col),
    `unsupported option ${q(o.name)} of ${owner}: ${SKIP_HINT}`,
    `${owner.replace(/"/g, "")} ${o.name}`,
    true,
  );
}

/** Refuses a match whose `-p` does not name one of `protos` (iptables' "needs -p" checks). */
export function needProto(ctx: Ctx, pi: ProtoInfo, modTok: Tok, protos: readonly number[], what: string): void {
  if (pi.proto < 0 || pi.protoNeg || !protos.includes(pi.proto)) {
    const names = protos.map((p) =>
      p === 6 ? "tcp" : p === 17 ? "udp" : p === 132 ? "sctp" : p === 136 ? "udplite" : p === 1 ? "icmp" : p === 58 ? "ipv6-icmp" : "dccp",
    );
    throw new RulesetSyntaxError(textPos(ctx.file, ctx.lineNo, modTok.col), `${what} needs ${q("-p")} with ${names.join(", ")}`);
  }
}

/** `addr[-addr][:port[-port]]`, IPv6 addresses in brackets when a port follows. */
export function natSpec(ctx: Ctx, type: "snat" | "dnat", tok: Tok, proto: number, random: boolean, fullyRandom: boolean, persistent: boolean): NatSpec {
  const bad = () => new RulesetSyntaxError(textPos(ctx.file, ctx.lineNo, tok.col), `invalid NAT range ${q(tok.text)}: expected ADDR[-ADDR][:PORT[-PORT]]`);
  const s = tok.text;
  let addrPart = s;
  let portPart = "";
  if (ctx.v6) {
    const m = /^\[([^\]]+)\](?:-\[([^\]]+)\])?(?::(.+))?$/.exec(s);
    if (m) {
      addrPart = m[2] ? `${m[1]}-${m[2]}` : (m[1] as string);
      portPart = m[3] ?? "";
    } else if (s.startsWith(":")) {
      addrPart = "";
      portPart = s.slice(1);
    }
  } else {
    const c = s.indexOf(":");
    if (c >= 0) {
      addrPart = s.slice(0, c);
      portPart = s.slice(c + 1);
    }
  }
  let addrLo: Uint32Array | null = null;
  let addrHi: Uint32Array | null = null;
  if (addrPart !== "") {
    const fam = ctx.v6 ? 6 : 4;
    const dash = addrPart.indexOf("-");
    const a = parseAddr(dash >= 0 ? addrPart.slice(0, dash) : addrPart);
    const b2 = dash >= 0 ? parseAddr(addrPart.slice(dash + 1)) : a;
    if (!a || !b2 || a.family !== fam || b2.family !== fam) throw bad();
    addrLo = a.words;
    addrHi = b2.words;
  }
  let portLo = -1;
  let portHi = -1;
  if (portPart !== "") {
    if (!PORT_PROTOS.includes(proto)) {
      throw new RulesetSyntaxError(textPos(ctx.file, ctx.lineNo, tok.col), `a port in ${q(tok.text)} needs ${q("-p")} with tcp, udp, sctp or dccp`);
    }
    const m = /^([0-9]{1,5})(?:-([0-9]{1,5}))?$/.exec(portPart);
    if (!m) throw bad();
    portLo = Number(m[1]);
    portHi = m[2] === undefined ? portLo : Number(m[2]);
    if (portLo > 65535 || portHi > 65535 || portHi < portLo) throw bad();
  }
  if (!addrLo && portLo < 0) throw bad();
  return { kind: "nat", type, family: ctx.v6 ? 6 : 4, addrLo, addrHi, portLo, portHi, random, fullyRandom, persistent };
}

export function parseIcmpType(ctx: Ctx, o: Opt, v6: boolean): Match {
  const a = o.args[0] as Tok;
  const names = v6 ? ICMPV6_NAMES : ICMP_NAMES;
  let pairs: number[];
  const named = names[a.text];
  if (named) {
    pairs = named[0] < 0 ? [0, 0xffff] : [named[0] * 256 + named[1], named[0] * 256 + named[2]];
  } else {
    const m = /^([0-9]{1,3})(?:\/([0-9]{1,3}))?$/.exec(a.text);
    if (!m || Number(m[1]) > 255 || (m[2] !== undefined && Number(m[2]) > 255)) {
      throw new RulesetSyntaxError(textPos(ctx.file, ctx.lineNo, a.col), `unknown ${v6 ? "ICMPv6" : "ICMP"} type ${q(a.text)}`);
    }
    const t = Number(m[1]);
    pairs = m[2] === undefined ? [t * 256, t * 256 + 255] : [t * 256 + Number(m[2]), t * 256 + Number(m[2])];
  }
  return { kind: "icmp", v6, neg: o.neg, types: new NumSet(pairs), text: a.text };
}

/** `port`, `lo:hi`, `:hi`, `lo:` (or a service name). */
export function parsePortRange(ctx: Ctx, tok: Tok, text = tok.text): NumSet {
  const bad = () => new RulesetSyntaxError(textPos(ctx.file, ctx.lineNo, tok.col), `invalid port ${q(text)}`);
  const one = (s: string, dflt: number): number => {
    if (s === "") return dflt;
    if (/^[0-9]{1,5}$/.test(s)) {
      const n = Number(s);
      if (n > 65535) throw bad();
      return n;
    }
    const sv = SERVICES[s];
    if (sv === undefined) throw bad();
    return sv;
  };
  const c = text.indexOf(":");
  if (c < 0) {
    const p = one(text, -1);
    if (p < 0) throw bad();
    return new NumSet([p, p]);
  }
  const lo = one(text.slice(0, c), 0);
  const hi = one(text.slice(c + 1), 65535);
  // iptables swaps an inverted range silently (parse_multi_ports / xtables_parse_port range).
  return new NumSet(lo <= hi ? [lo, hi] : [hi, lo]);
}

/** libxt_tcp's flag names: ALL is the six classic flags (0x3F), ECE and CWR have no name there. */
const XT_TCP_FLAGS: Readonly<Record<string, number>> = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, URG: 0x20, ALL: 0x3f, NONE: 0 };

export function parseFlags(ctx: Ctx, tok: Tok): number {
  let v = 0;
  for (const f of tok.text.split(",")) {
    const bit = XT_TCP_FLAGS[f.toUpperCase()];
    if (bit === undefined) throw new RulesetSyntaxError(textPos(ctx.file, ctx.lineNo, tok.col), `unknown TCP flag ${q(f)}`);
    v |= bit;
  }
  return v;
}

export function parseAddrList(ctx: Ctx, tok: Tok, family: 4 | 6): AddrSet {
  const ranges: Array<{ lo: Uint32Array; hi: Uint32Array }> = [];
  const parts = tok.text.split(",");
  for (const p of parts) {
    const c = parseCidr(p, family);
    if (!c) {
      const other = parseCidr(p, family === 4 ? 6 : 4);
      if (other)
        throw new RulesetSyntaxError(
          textPos(ctx.file, ctx.lineNo, tok.col),
          `${family === 4 ? "IPv6" : "IPv4"} address ${q(p)} in an ${family === 4 ? "iptables" : "ip6tables"} rule`,
        );
      if (/^[a-zA-Z][a-zA-Z0-9.-]*$/.test(p)) {
        throw new RulesetSyntaxError(textPos(ctx.file, ctx.lineNo, tok.col), `host name ${q(p)} cannot be resolved here: use addresses`, "hostname");
      }
      throw new RulesetSyntaxError(textPos(ctx.file, ctx.lineNo, tok.col), `invalid address ${q(p)}`);
    }
    ranges.push({ lo: c.lo, hi: c.hi });
  }
  return new AddrSet(family, ranges, parts);
}

export function parseValueMask(ctx: Ctx, tok: Tok, max: number): { value: number; mask: number } {
  const [v, m] = tok.text.split("/");
  const value = parseUint(v ?? "", max);
  const mask = m === undefined ? 0xffffffff : parseUint(m, max);
  if (Number.isNaN(value) || Number.isNaN(mask) || tok.text.split("/").length > 2) {
    throw new RulesetSyntaxError(textPos(ctx.file, ctx.lineNo, tok.col), `invalid value ${q(tok.text)}: expected VALUE[/MASK]`);
  }
  return { value, mask };
}

export function num(ctx: Ctx, tok: Tok, max: number): number {
  const v = parseUint(tok.text, max);
  if (Number.isNaN(v)) throw new RulesetSyntaxError(textPos(ctx.file, ctx.lineNo, tok.col), `invalid number ${q(tok.text)}`);
  return v;
}

export function parseRate(ctx: Ctx, tok: Tok): { rate: number; unitSec: number } {
  const m = /^([0-9]{1,10})(?:\/([a-zA-Z]+))?$/.exec(tok.text);
  const bad = () => new RulesetSyntaxError(textPos(ctx.file, ctx.lineNo, tok.col), `invalid rate ${q(tok.text)}: expected N/second, N/minute, N/hour or N/day`);
  if (!m) throw bad();
  const rate = Number(m[1]);
  const u = (m[2] ?? "second").toLowerCase();
  // libxt_limit compares a prefix of the unit name, so "s", "sec" and "second" all work.
  const units: Array<[string, number]> = [
    ["second", 1],
    ["minute", 60],
    ["hour", 3600],
    ["day", 86400],
  ];
  const hit = units.find(([name]) => name.startsWith(u));
  if (!hit || rate === 0) throw bad();
  // xt_limit stores avg = XT_LIMIT_SCALE * unit / rate and rejects 0.
  if (Math.floor((10000 * hit[1]) / rate) === 0) throw new RulesetSyntaxError(textPos(ctx.file, ctx.lineNo, tok.col), `rate ${q(tok.text)} is too fast`);
  return { rate, unitSec: hit[1] };
}

export function maskLenOf(family: 4 | 6, w: Uint32Array): number {
  let len = 0;
  let ended = false;
  for (let i = 0; i < (family === 4 ? 1 : 4); i++) {
    for (let b = 31; b >= 0; b--) {
      if ((((w[i] as number) >>> b) & 1) === 1) {
        if (ended) return -1;
        len++;
      } else ended = true;
    }
  }
  return len;
}
