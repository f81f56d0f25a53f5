/**
 * Reader for `ipset save` output: `create NAME TYPE [options]` and
 * `add NAME ENTRY [options]` lines. Supported types: hash:ip, hash:net,
 * hash:ip,port, hash:net,port, hash:ip,port,ip, hash:ip,port,net, bitmap:ip,
 * bitmap:port. Entries may be single values, CIDRs or ranges.
 */
import { RulesetSyntaxError, q, textPos } from "./errors.js";
import type { IpSet, IpSetEntry } from "./model.js";
import { PROTO_NUM, parseAddr, parseCidr } from "./values.js";

const SUPPORTED = new Set(["hash:ip", "hash:net", "hash:ip,port", "hash:net,port", "hash:ip,port,ip", "hash:ip,port,net", "bitmap:ip", "bitmap:port"]);

/** Create-line options that take a value (others are flags). */
const CREATE_VALUE_OPTS = new Set(["family", "hashsize", "maxelem", "range", "timeout", "netmask", "bucketsize", "initval", "markmask", "size"]);
/** Add-line options that take a value. */
const ADD_VALUE_OPTS = new Set(["timeout", "packets", "bytes", "comment", "skbmark", "skbprio", "skbqueue"]);

interface Tok {
  text: string;
  col: number;
}

function tokenize(line: string, lineNo: number, file: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < line.length) {
    const c = line[i] as string;
    if (c === " " || c === "\t") {
      i++;
      continue;
    }
    const start = i;
    let text = "";
    if (c === '"') {
      i++;
      while (i < line.length && line[i] !== '"') {
        if (line[i] === "\\" && i + 1 < line.length) i++;
        text += line[i] as string;
        i++;
      }
      if (i >= line.length) throw new RulesetSyntaxError(textPos(file, lineNo, start + 1), "unterminated quoted string");
      i++;
    } else {
      while (i < line.length && line[i] !== " " && line[i] !== "\t") text += line[i++] as string;
    }
    out.push({ text, col: start + 1 });
  }
  return out;
}

/**
 * Parses an `ipset save` file into sets by name.
 * @throws {RulesetSyntaxError} on malformed lines and unsupported set types.
 */
export function parseIpsetSave(text: string, file = "<ipset>"): Map<string, IpSet> {
  const sets = new Map<string, IpSet>();
  const lines = text.split("\n");
  for (let n = 0; n < lines.length; n++) {
    const lineNo = n + 1;
    const line = (lines[n] as string).replace(/\r$/, "");
    const toks = tokenize(line, lineNo, file);
    const first = toks[0];
    if (!first || first.text.startsWith("#")) continue;
    const at = (t: Tok) => textPos(file, lineNo, t.col);
    const name = toks[1];
    if (!name) throw new RulesetSyntaxError(at(first), `missing set name after ${q(first.text)}`);
    if (first.text === "create" || first.text === "-N") {
      const type = toks[2];
      if (!type) throw new RulesetSyntaxError(at(name), `missing set type for set ${q(name.text)}`);
      if (!SUPPORTED.has(type.text)) {
        throw new RulesetSyntaxError(at(type), `unsupported ipset type ${q(type.text)}`, `ipset ${type.text}`);
      }
      let family: 4 | 6 = 4;
      for (let i = 3; i < toks.length; i++) {
        const o = (toks[i] as Tok).text;
        if (CREATE_VALUE_OPTS.has(o)) {
          const v = toks[++i];
          if (!v) throw new RulesetSyntaxError(at(toks[i - 1] as Tok), `missing value for ${q(o)}`);
          if (o === "family") {
            if (v.text === "inet") family = 4;
            else if (v.text === "inet6") family = 6;
            else throw new RulesetSyntaxError(at(v), `unknown family ${q(v.text)}`);
          }
        }
      }
      if (sets.has(name.text)) throw new RulesetSyntaxError(at(name), `set ${q(name.text)} is created twice`);
      sets.set(name.text, { name: name.text, type: type.text, family, entries: [], pos: at(first) });
    } else if (first.text === "add" || first.text === "-A") {
      const set = sets.get(name.text);
      if (!set) throw new RulesetSyntaxError(at(name), `set ${q(name.text)} is added to before it is created`);
      const entry = toks[2];
      if (!entry) throw new RulesetSyntaxError(at(name), `missing entry for set ${q(name.text)}`);
      let nomatch = false;
      for (let i = 3; i < toks.length; i++) {
        const o = (toks[i] as Tok).text;
        if (ADD_VALUE_OPTS.has(o)) i++;
        else if (o === "nomatch") nomatch = true;
      }
      set.entries.push(parseEntry(set, entry.text, nomatch, () => at(entry)));
    } else {
      throw new RulesetSyntaxError(at(first), `unknown ipset command ${q(first.text)}`);
    }
  }
  return sets;
}

function parseEntry(set: IpSet, s: string, nomatch: boolean, at: () => ReturnType<typeof textPos>): IpSetEntry {
  const dims = (set.type.split(":")[1] as string).split(",");
  const parts = s.split(",");
  if (parts.length !== dims.length) {
    throw new RulesetSyntaxError(at(), `entry ${q(s)} does not fit set type ${q(set.type)}`);
  }
  const values: IpSetEntry["values"][number][] = [];
  dims.forEach((d, i) => {
    const v = parts[i] as string;
    if (d === "port") {
      let proto = set.type.startsWith("bitmap") ? 0 : 6;
      let p = v;
      const colon = v.indexOf(":");
      if (colon >= 0) {
        const pn = PROTO_NUM[v.slice(0, colon)];
        if (pn === undefined) throw new RulesetSyntaxError(at(), `unknown protocol in entry ${q(s)}`);
        proto = pn;
        p = v.slice(colon + 1);
      }
      const m = /^([0-9]{1,5})(?:-([0-9]{1,5}))?$/.exec(p);
      if (!m) throw new RulesetSyntaxError(at(), `invalid port in entry ${q(s)}`);
      const lo = Number(m[1]);
      const hi = m[2] === undefined ? lo : Number(m[2]);
      if (lo > 65535 || hi > 65535 || hi < lo) throw new RulesetSyntaxError(at(), `invalid port range in entry ${q(s)}`);
      values.push({ t: "port", proto, lo, hi });
    } else {
      const dash = v.indexOf("-");
      if (dash > 0) {
        const a = parseAddr(v.slice(0, dash));
        const b = parseAddr(v.slice(dash + 1));
        if (!a || !b || a.family !== set.family || b.family !== set.family) {
          throw new RulesetSyntaxError(at(), `invalid address range in entry ${q(s)}`);
        }
        values.push({ t: "addr", lo: a.words, hi: b.words });
      } else {
        const c = parseCidr(v, set.family);
        if (!c) throw new RulesetSyntaxError(at(), `invalid address in entry ${q(s)}`);
        values.push({ t: "addr", lo: c.lo, hi: c.hi });
      }
    }
  });
  return { values, nomatch };
}
