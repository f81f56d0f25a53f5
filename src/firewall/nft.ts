/**
 * `nft -j list ruleset` JSON (libnftables-json(5)) → Ruleset. (nft text is
 * converted to this JSON by the real `nft`: see src/host/nft-text.ts.)
 *
 * The listing drops the implicit dependencies nft adds to the bytecode
 * (`tcp dport` implies `meta l4proto tcp`; `ip saddr` in an inet table implies
 * `meta nfproto ipv4`), so the converter puts them back as explicit matches:
 * the model then means what the kernel evaluates.
 *
 * Every error names the JSON path of the offending value. Keys `__proto__`,
 * `constructor` and `prototype` are rejected anywhere in the document.
 */
import { RulesetSyntaxError, SKIP_HINT, jsonPos, q, textPos } from "./errors.js";
import { addChain, checkChainGraph, emptyRuleset, newTable } from "./model.js";
import type {
  Action,
  BaseChain,
  Chain,
  CtTupleField,
  Elem,
  ElemValue,
  Family,
  HookName,
  Match,
  NamedSet,
  NumGen,
  NatSpec,
  Rule,
  Ruleset,
  Selector,
  Table,
} from "./model.js";
import {
  AddrSet,
  CTSTATE_BITS,
  CTSTATUS_BITS,
  ICMPV6_CODE_NAMES,
  ICMPV6_NAMES,
  ICMP_CODE_NAMES,
  ICMP_NAMES,
  NumSet,
  PORT_PROTOS,
  PROTO_NUM,
  TCP_FLAG_BITS,
  formatAddr,
  parseAddr,
  parseIface,
  prefixRange,
} from "./values.js";
import type { IfacePattern } from "./values.js";

/** Options for {@link parseNftJson}. */
export interface NftParseOptions {
  /** File name used in positions. Default "<stdin>". */
  readonly file?: string;
  /** Keep rules with unsupported statements/expressions as never-matching instead of failing. */
  readonly allowUnsupported?: boolean;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

/** A JSON value as an error message quotes it: strings as they are, objects and arrays as JSON. */
function jsonText(v: Json | undefined): string {
  return typeof v === "object" && v !== null ? JSON.stringify(v) : String(v);
}

const FORBIDDEN_KEYS = new Set(["__proto__", "constructor", "prototype"]);
const MAX_DEPTH = 64;
const FAMILIES = new Set<Family>(["ip", "ip6", "inet", "arp", "bridge", "netdev"]);
const HOOKS = new Set<HookName>(["prerouting", "input", "forward", "output", "postrouting", "ingress", "egress"]);
const PRIO_NAMES: Readonly<Record<string, number>> = { raw: -300, mangle: -150, dstnat: -100, filter: 0, security: 50, srcnat: 100 };

/** Parse-time state. */
interface St {
  readonly rs: Ruleset;
  readonly file: string;
  readonly allowUnsupported: boolean;
  ruleId: number;
  /** Sets that a set statement updates ("family|table|name"): their lookups must see run-time elements. */
  readonly dynamicSets: Set<string>;
}

function isObj(v: Json | undefined): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function err(st: St, path: string, detail: string, feature = "syntax", unsupported = false): RulesetSyntaxError {
  return new RulesetSyntaxError(jsonPos(st.file, path), detail, feature, unsupported);
}

function unsupported(st: St, path: string, what: string, feature: string): RulesetSyntaxError {
  return err(st, path, `unsupported ${what}: ${SKIP_HINT}`, feature, true);
}

/** Rejects prototype-polluting keys and absurd nesting; returns the value unchanged. */
function checkKeys(st: St, v: Json, path: string, depth: number): void {
  if (depth > MAX_DEPTH) throw err(st, path, `nesting deeper than ${MAX_DEPTH} levels`);
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) checkKeys(st, v[i] as string | number | boolean | Json[] | { [k: string]: Json }, `${path}[${i}]`, depth + 1);
  } else if (isObj(v)) {
    for (const k of Object.keys(v)) {
      if (FORBIDDEN_KEYS.has(k)) throw err(st, `${path}.${k}`, `forbidden key ${q(k)}`);
      checkKeys(st, v[k] as string | number | boolean | Json[] | { [k: string]: Json }, keyPath(path, k), depth + 1);
    }
  }
}

function keyPath(path: string, k: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? `${path}.${k}` : `${path}[${JSON.stringify(k)}]`;
}

/**
 * Parses JSON text. On failure, a small iterative scanner finds the offset of
 * the first error (V8's messages do not always carry one), so the error names
 * line and column.
 */
function parseJsonText(text: string, file: string): Json {
  try {
    return JSON.parse(text) as Json;
  } catch {
    const e = locateJsonError(text) ?? { offset: 0, detail: "the document is not valid JSON" };
    const before = text.slice(0, e.offset);
    const line = before.split("\n").length;
    const col = e.offset - before.lastIndexOf("\n");
    throw new RulesetSyntaxError(textPos(file, line, col), `invalid JSON: ${e.detail}`);
  }
}

const JSON_NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?/y;

/** Finds the first JSON syntax error: offset and description, or null when the text is valid. Iterative: no depth limit. */
function locateJsonError(s: string): { offset: number; detail: string } | null {
  const stack: Array<"{" | "["> = [];
  const n = s.length;
  let i = 0;
  let expect: "value" | "key" | "after" = "value";
  const fail = (detail: string) => ({ offset: i, detail });
  const tok = () => (i >= n ? "end of input" : `token ${q(s[i] as string)}`);
  const skip = () => {
    while (i < n && (s[i] === " " || s[i] === "\t" || s[i] === "\n" || s[i] === "\r")) i++;
  };
  const str = (): { offset: number; detail: string } | null => {
    i++;
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return null;
      }
      if (c < 0x20) return fail("control character in a string");
      if (c === 0x5c) {
        const d = s[i + 1];
        if (d === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(s.slice(i + 2, i + 6))) return fail("invalid \\u escape");
          i += 6;
          continue;
        }
        if (d === undefined || !'"\\/bfnrt'.includes(d)) return fail("invalid escape in a string");
        i += 2;
        continue;
      }
      i++;
    }
    return fail("unterminated string");
  };
  for (;;) {
    skip();
    if (expect === "value") {
      if (i >= n) return fail("unexpected end of input");
      const c = s[i] as string;
      if (c === "{" || c === "[") {
        stack.push(c);
        i++;
        skip();
        if (s[i] === (c === "{" ? "}" : "]")) {
          stack.pop();
          i++;
          expect = "after";
        } else expect = c === "{" ? "key" : "value";
        continue;
      }
      if (c === '"') {
        const e = str();
        if (e) return e;
        expect = "after";
        continue;
      }
      JSON_NUMBER.lastIndex = i;
      if (JSON_NUMBER.exec(s)) {
        i = JSON_NUMBER.lastIndex;
        expect = "after";
        continue;
      }
      const lit = ["true", "false", "null"].find((l) => s.startsWith(l, i));
      if (lit) {
        i += lit.length;
        expect = "after";
        continue;
      }
      return fail(`unexpected ${tok()}`);
    }
    if (expect === "key") {
      if (s[i] !== '"') return fail(`expected a string key, found ${tok()}`);
      const e = str();
      if (e) return e;
      skip();
      if (s[i] !== ":") return fail(`expected ${q(":")}, found ${tok()}`);
      i++;
      expect = "value";
      continue;
    }
    const top = stack[stack.length - 1];
    if (!top) return i >= n ? null : fail(`unexpected ${tok()} after the document`);
    if (s[i] === ",") {
      i++;
      expect = top === "{" ? "key" : "value";
      continue;
    }
    if (s[i] === (top === "{" ? "}" : "]")) {
      stack.pop();
      i++;
      continue;
    }
    return fail(`expected ${q(",")} or ${q(top === "{" ? "}" : "]")}, found ${tok()}`);
  }
}

/**
 * Parses `nft -j list ruleset` output (or an nft JSON input file with
 * add/create commands) into a Ruleset.
 * @throws {RulesetSyntaxError} with the JSON path of the offending value.
 */
export function parseNftJson(text: string, opts: NftParseOptions = {}): Ruleset {
  const file = opts.file ?? "<stdin>";
  const st: St = { rs: emptyRuleset("nft", file), file, allowUnsupported: opts.allowUnsupported === true, ruleId: 0, dynamicSets: new Set() };
  const doc = parseJsonText(text, file);
  checkKeys(st, doc, "$", 0);
  if (!isObj(doc) || !Array.isArray(doc["nftables"])) throw err(st, "$", `expected an object with an ${q("nftables")} array`);
  const items = doc["nftables"];
  // Unwrap command objects ({"add": {"rule": …}}) as nft -j -f accepts them.
  const flat: Array<{ kind: string; body: Json; path: string }> = [];
  items.forEach((item, i) => {
    const path = `$.nftables[${i}]`;
    if (!isObj(item)) throw err(st, path, "expected an object");
    const keys = Object.keys(item);
    if (keys.length !== 1) throw err(st, path, `expected exactly one key, found ${keys.length}`);
    const kind = keys[0] as string;
    const body = item[kind] as string | number | boolean | Json[] | { [k: string]: Json };
    if (kind === "add" || kind === "create" || kind === "insert") {
      if (!isObj(body) || Object.keys(body).length !== 1) throw err(st, keyPath(path, kind), "expected an object with one key");
      const inner = Object.keys(body)[0] as string;
      flat.push({ kind: inner, body: body[inner] as string | number | boolean | Json[] | { [k: string]: Json }, path: keyPath(keyPath(path, kind), inner) });
    } else if (kind === "flush" || kind === "delete" || kind === "destroy") {
      if (!(isObj(body) && "ruleset" in body)) {
        throw unsupported(st, keyPath(path, kind), `command ${q(kind)} other than ${q("flush ruleset")}`, `command ${kind}`);
      }
    } else flat.push({ kind, body, path: keyPath(path, kind) });
  });
  // The sets that set statements (`update @s { ip saddr }`) write to, wherever the rule sits.
  for (const it of flat) {
    if (it.kind !== "rule" || !isObj(it.body) || !Array.isArray(it.body["expr"])) continue;
    for (const s of it.body["expr"]) {
      const d = isObj(s) && isObj(s["set"]) ? s["set"] : null;
      if (d && typeof d["op"] === "string" && typeof d["set"] === "string")
        st.dynamicSets.add(`${jsonText(it.body["family"])}|${jsonText(it.body["table"])}|${d["set"].slice(1)}`);
    }
  }
  // Pass 1: tables and chains; pass 2: sets, maps and objects (map data may
  // name chains); pass 3: rules and elements.
  for (const it of flat) {
    if (it.kind === "table") readTable(st, it.body, it.path);
  }
  for (const it of flat) {
    if (it.kind === "chain") readChain(st, it.body, it.path);
  }
  for (const it of flat) {
    switch (it.kind) {
      case "metainfo":
      case "table":
      case "chain":
      case "rule":
      case "element":
        break;
      case "set":
      case "map":
        readSet(st, it.body, it.path, it.kind === "map");
        break;
      case "flowtable":
        st.rs.notes.push({ pos: jsonPos(file, it.path), message: "flowtable ignored: offloaded flows are modelled as ordinary conntrack entries" });
        break;
      case "ct helper":
      case "ct timeout":
      case "ct expectation": {
        const b = objAt(st, it.body, it.path);
        const t = tableOf(st, b, it.path);
        const helperType = it.kind === "ct helper" && typeof b["type"] === "string" ? b["type"] : "";
        st.rs.ctObjects.push({ kind: it.kind, family: t.family, table: t.name, name: str(st, b, "name", it.path), helperType, pos: jsonPos(file, it.path) });
        break;
      }
      case "counter":
      case "quota":
      case "limit":
      case "secmark":
      case "synproxy":
        st.rs.notes.push({ pos: jsonPos(file, it.path), message: `named ${it.kind} object read but not modelled` });
        break;
      default:
        throw err(st, it.path, `unknown object ${q(it.kind)}`, it.kind);
    }
  }
  for (const it of flat) {
    if (it.kind === "rule") readRule(st, it.body, it.path);
    else if (it.kind === "element") readElements(st, it.body, it.path);
  }
  checkChainGraph(st.rs);
  return st.rs;
}

// ---------------------------------------------------------------------------
// Containers

function objAt(st: St, v: Json, path: string): Obj {
  if (!isObj(v)) throw err(st, path, "expected an object");
  return v;
}

function str(st: St, o: Obj, k: string, path: string): string {
  const v = o[k];
  if (typeof v !== "string") throw err(st, keyPath(path, k), `expected a string for ${q(k)}`);
  return v;
}

function intAt(st: St, v: Json | undefined, path: string, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) throw err(st, path, `expected an integer from ${min} to ${max}`);
  return v;
}

function familyOf(st: St, o: Obj, path: string): Family {
  const f = str(st, o, "family", path) as Family;
  if (!FAMILIES.has(f)) throw err(st, keyPath(path, "family"), `unknown family ${q(f)}`);
  return f;
}

function tableOf(st: St, o: Obj, path: string): Table {
  const family = familyOf(st, o, path);
  const name = str(st, o, "table", path);
  const t = st.rs.tables.find((x) => x.family === family && x.name === name);
  if (!t) throw err(st, keyPath(path, "table"), `table ${q(`${family} ${name}`)} does not exist`);
  return t;
}

function readTable(st: St, body: Json, path: string): void {
  const o = objAt(st, body, path);
  const family = familyOf(st, o, path);
  const name = str(st, o, "name", path);
  if (st.rs.tables.some((t) => t.family === family && t.name === name)) return; // "add table" twice is a no-op in nft
  st.rs.tables.push(newTable(family, name, jsonPos(st.file, path)));
}

function readChain(st: St, body: Json, path: string): void {
  const o = objAt(st, body, path);
  const t = tableOf(st, o, path);
  const name = str(st, o, "name", path);
  if (t.chainByName.has(name)) throw err(st, keyPath(path, "name"), `chain ${q(name)} appears twice in table ${q(t.name)}`);
  let base: BaseChain | null = null;
  if (o["hook"] !== undefined) {
    const hook = str(st, o, "hook", path) as HookName;
    if (!HOOKS.has(hook)) throw err(st, keyPath(path, "hook"), `unknown hook ${q(hook)}`);
    const type: string = o["type"] === undefined ? "filter" : str(st, o, "type", path);
    if (type !== "filter" && type !== "nat" && type !== "route") throw err(st, keyPath(path, "type"), `unknown chain type ${q(type)}`);
    let priority = 0;
    const p = o["prio"];
    if (typeof p === "string") {
      const m = /^([a-z]+)\s*(?:([+-])\s*([0-9]+))?$/.exec(p);
      const baseP = m ? PRIO_NAMES[m[1] as string] : undefined;
      if (!m || baseP === undefined) throw err(st, keyPath(path, "prio"), `unknown priority ${q(p)}`);
      priority = baseP + (m[2] ? (m[2] === "-" ? -1 : 1) * Number(m[3]) : 0);
    } else if (p !== undefined) priority = intAt(st, p, keyPath(path, "prio"), -2147483648, 2147483647);
    const pol = o["policy"] === undefined ? "accept" : str(st, o, "policy", path);
    if (pol !== "accept" && pol !== "drop") throw err(st, keyPath(path, "policy"), `unknown policy ${q(pol)}`);
    base = { type, hook, priority, policy: pol };
  }
  addChain(t, name, base, jsonPos(st.file, path));
}

/** Key types → selector and value kind for named sets. */
function selectorForType(type: string): { sel: Selector | null; vt: VType } {
  switch (type) {
    case "ipv4_addr":
      return { sel: null, vt: { k: "addr", family: 4 } };
    case "ipv6_addr":
      return { sel: null, vt: { k: "addr", family: 6 } };
    case "inet_service":
      return { sel: null, vt: { k: "num", names: {}, max: 65535 } };
    case "inet_proto":
      return { sel: "l4proto", vt: { k: "num", names: PROTO_NUM, max: 255 } };
    case "ifname":
      return { sel: null, vt: { k: "str" } };
    case "mark":
      return { sel: null, vt: { k: "num", names: {}, max: 0xffffffff } };
    case "ct_state":
      return { sel: "ctstate", vt: { k: "num", names: CTSTATE_BITS, max: 0xffffffff } };
    case "ct_status":
      return { sel: "ctstatus", vt: { k: "num", names: CTSTATUS_BITS, max: 0xffffffff } };
    case "nf_proto":
      return { sel: "nfproto", vt: { k: "num", names: { ipv4: 2, ipv6: 10 }, max: 255 } };
    case "icmp_type":
      return { sel: "icmptype", vt: { k: "num", names: icmpTypeNums(false), max: 255 } };
    case "icmpv6_type":
      return { sel: "icmptype", vt: { k: "num", names: icmpTypeNums(true), max: 255 } };
    case "tcp_flag":
      return { sel: "tcpflags", vt: { k: "num", names: TCP_FLAG_BITS, max: 255 } };
    default:
      return { sel: null, vt: { k: "unknown", type } };
  }
}

function readSet(st: St, body: Json, path: string, isMap: boolean): void {
  const o = objAt(st, body, path);
  const t = tableOf(st, o, path);
  const name = str(st, o, "name", path);
  const typeV = o["type"];
  const types: string[] = [];
  if (typeof typeV === "string") types.push(typeV);
  else if (Array.isArray(typeV) && typeV.length > 0 && typeV.every((x) => typeof x === "string")) types.push(...typeV);
  else throw err(st, keyPath(path, "type"), "expected a type name or a list of type names");
  let verdicts: Action[] | null = null;
  if (isMap) {
    const data = o["map"];
    verdicts = data === "verdict" ? [] : null;
  }
  const timeoutS = o["timeout"];
  const sizeV = o["size"];
  const set: NamedSet = {
    name,
    keys: null,
    keyTypes: types,
    elems: [],
    verdicts,
    pos: jsonPos(st.file, path),
    timeoutMs: timeoutS === undefined ? 0 : intAt(st, timeoutS, keyPath(path, "timeout"), 0, 0xffffffff) * 1000,
    size: sizeV === undefined ? 0 : intAt(st, sizeV, keyPath(path, "size"), 0, 0xffffffff),
    slot: st.rs.slots++,
  };
  if (t.sets.has(name)) throw err(st, keyPath(path, "name"), `set ${q(name)} appears twice in table ${q(t.name)}`);
  t.sets.set(name, set);
  if (o["elem"] !== undefined) addElems(st, t, set, o["elem"], keyPath(path, "elem"));
}

function readElements(st: St, body: Json, path: string): void {
  const o = objAt(st, body, path);
  const t = tableOf(st, o, path);
  const name = str(st, o, "name", path);
  const set = t.sets.get(name);
  if (!set) throw err(st, keyPath(path, "name"), `set ${q(name)} does not exist in table ${q(t.name)}`);
  addElems(st, t, set, o["elem"] ?? [], keyPath(path, "elem"));
}

function addElems(st: St, t: Table, set: NamedSet, elems: Json, path: string): void {
  if (!Array.isArray(elems)) throw err(st, path, "expected an array of elements");
  const vts = set.keyTypes.map((ty) => selectorForType(ty).vt);
  elems.forEach((e, i) => {
    const p = `${path}[${i}]`;
    let key: Json = e;
    if (set.verdicts) {
      if (!Array.isArray(e) || e.length !== 2) throw err(st, p, "expected a [key, verdict] pair");
      key = e[0] as string | number | boolean | Json[] | { [k: string]: Json };
      set.verdicts.push(readVerdict(st, t, e[1] as string | number | boolean | Json[] | { [k: string]: Json }, `${p}[1]`));
    } else if (Array.isArray(e) && e.length === 2 && set.keyTypes.length === 1 && !Array.isArray(e[0])) {
      key = e[0] as string | number | boolean | { [k: string]: Json }; // data map element [key, data]: the key is what lookups see
    }
    set.elems.push(...elemsOf(st, vts, key, set.verdicts ? `${p}[0]` : p));
  });
}

// ---------------------------------------------------------------------------
// Values

type VType =
  | { readonly k: "addr"; readonly family: 4 | 6 }
  | { readonly k: "num"; readonly names: Readonly<Record<string, number>>; readonly max: number }
  | { readonly k: "str" }
  | { readonly k: "unknown"; readonly type: string };

function icmpTypeNums(v6: boolean): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(v6 ? ICMPV6_NAMES : ICMP_NAMES)) if (v[0] >= 0) out[k] = v[0];
  return out;
}

/** One key value (not a concatenation) → ElemValue. */
function scalarValue(st: St, vt: VType, v: Json, path: string): ElemValue {
  if (isObj(v) && isObj(v["elem"])) {
    const inner = v["elem"]["val"];
    if (inner === undefined) throw err(st, `${path}.elem`, `expected ${q("val")}`);
    return scalarValue(st, vt, inner, `${path}.elem.val`);
  }
  switch (vt.k) {
    case "addr": {
      if (typeof v === "string") {
        const a = parseAddr(v);
        if (!a || a.family !== vt.family) throw err(st, path, `invalid ${vt.family === 4 ? "IPv4" : "IPv6"} address ${q(v)}`);
        return { t: "addr", family: vt.family, lo: a.words, hi: a.words };
      }
      if (isObj(v) && isObj(v["prefix"])) {
        const p = v["prefix"];
        const addr = p["addr"];
        const a = typeof addr === "string" ? parseAddr(addr) : null;
        if (!a || a.family !== vt.family) throw err(st, `${path}.prefix.addr`, "invalid prefix address");
        const len = intAt(st, p["len"], `${path}.prefix.len`, 0, vt.family === 4 ? 32 : 128);
        const r = prefixRange(vt.family, a.words, len);
        return { t: "addr", family: vt.family, lo: r.lo, hi: r.hi };
      }
      if (isObj(v) && Array.isArray(v["range"]) && v["range"].length === 2) {
        const lo = scalarValue(st, vt, v["range"][0] as string | number | boolean | Json[] | { [k: string]: Json }, `${path}.range[0]`);
        const hi = scalarValue(st, vt, v["range"][1] as string | number | boolean | Json[] | { [k: string]: Json }, `${path}.range[1]`);
        if (lo.t !== "addr" || hi.t !== "addr") throw err(st, `${path}.range`, "invalid address range");
        return { t: "addr", family: vt.family, lo: lo.lo, hi: hi.hi };
      }
      throw err(st, path, "expected an address, prefix or range");
    }
    case "num": {
      if (typeof v === "number" || typeof v === "string") return { t: "num", lo: numValue(st, vt, v, path), hi: numValue(st, vt, v, path) };
      if (Array.isArray(v)) {
        // A plain list of a bitmask type is the OR of its flags (tcp flags, ct state).
        let x = 0;
        v.forEach((f, i) => {
          x |= numValue(st, vt, f, `${path}[${i}]`);
        });
        return { t: "num", lo: x >>> 0, hi: x >>> 0 };
      }
      if (isObj(v) && Array.isArray(v["range"]) && v["range"].length === 2) {
        const lo = numValue(st, vt, v["range"][0] as string | number | boolean | Json[] | { [k: string]: Json }, `${path}.range[0]`);
        const hi = numValue(st, vt, v["range"][1] as string | number | boolean | Json[] | { [k: string]: Json }, `${path}.range[1]`);
        if (hi < lo) throw err(st, `${path}.range`, "range end is below its start");
        return { t: "num", lo, hi };
      }
      if (isObj(v) && Array.isArray(v["|"])) {
        let x = 0;
        v["|"].forEach((f, i) => {
          const e = scalarValue(st, vt, f, `${path}["|"][${i}]`);
          if (e.t !== "num") throw err(st, path, "invalid flag combination");
          x |= e.lo;
        });
        return { t: "num", lo: x >>> 0, hi: x >>> 0 };
      }
      throw err(st, path, "expected a number, name or range");
    }
    case "str":
      if (typeof v !== "string") throw err(st, path, "expected an interface name");
      return { t: "str", pattern: parseIface(v, "*") };
    default:
      throw unsupported(st, path, `set key type ${q(vt.type)}`, `type ${vt.type}`);
  }
}

function numValue(st: St, vt: Extract<VType, { k: "num" }>, v: Json, path: string): number {
  if (typeof v === "number") {
    if (!Number.isInteger(v) || v < 0 || v > vt.max) throw err(st, path, `value ${v} is out of range`);
    return v;
  }
  if (typeof v === "string") {
    const n = vt.names[v];
    if (n !== undefined) return n;
    if (/^(?:0x[0-9a-fA-F]{1,8}|[0-9]{1,10})$/.test(v)) {
      const x = Number(v);
      if (x <= vt.max) return x;
    }
    throw err(st, path, `unknown value ${q(v)}`);
  }
  throw err(st, path, "expected a number or a name");
}

/** A set element (possibly a concatenation) → Elem list (one per element). */
function elemsOf(st: St, vts: readonly VType[], v: Json, path: string): Elem[] {
  if (isObj(v) && isObj(v["elem"])) return elemsOf(st, vts, v["elem"]["val"] ?? null, `${path}.elem.val`);
  if (vts.length > 1) {
    if (!isObj(v) || !Array.isArray(v["concat"]) || v["concat"].length !== vts.length) {
      throw err(st, path, `expected a concatenation of ${vts.length} values`);
    }
    const parts = v["concat"];
    return [vts.map((vt, i) => scalarValue(st, vt, parts[i] as string | number | boolean | Json[] | { [k: string]: Json }, `${path}.concat[${i}]`))];
  }
  return [[scalarValue(st, vts[0] as VType, v, path)]];
}

// ---------------------------------------------------------------------------
// Expressions

/** What a left-hand expression reads, and what it implies. */
interface LeftInfo {
  readonly sel: Selector;
  readonly vt: VType;
  /** Protocol dependency nft adds to the bytecode (tcp dport → l4proto tcp), or null. */
  readonly l4dep: NumSet | null;
  readonly l4depText: string;
  /** Network family dependency (ip saddr → nfproto ipv4), or 0. */
  readonly nfdep: 0 | 4 | 6;
  /** For ct tuple selectors: which field; for ports/addresses of the packet: null. */
  readonly ctField: CtTupleField | null;
  /** `& mask` applied to the value, or 0xffffffff. */
  readonly mask: number;
  readonly text: string;
}

const NUM = (names: Readonly<Record<string, number>> = {}, max = 0xffffffff): VType => ({ k: "num", names, max });

function leftInfo(st: St, e: Json, path: string, family: Family): LeftInfo {
  if (isObj(e) && Array.isArray(e["&"]) && e["&"].length === 2) {
    const inner = leftInfo(st, e["&"][0] as string | number | boolean | Json[] | { [k: string]: Json }, `${path}["&"][0]`, family);
    const mv = scalarValue(
      st,
      inner.vt.k === "num" ? inner.vt : NUM(),
      e["&"][1] as string | number | boolean | Json[] | { [k: string]: Json },
      `${path}["&"][1]`,
    );
    if (mv.t !== "num") throw err(st, `${path}["&"][1]`, "expected a numeric mask");
    return { ...inner, mask: mv.lo, text: `${inner.text} & ${mv.lo}` };
  }
  const base = { l4dep: null, l4depText: "", nfdep: 0 as const, ctField: null, mask: 0xffffffff };
  if (isObj(e) && isObj(e["payload"])) {
    const p = e["payload"];
    const proto = p["protocol"];
    const field = p["field"];
    if (typeof proto !== "string" || typeof field !== "string") {
      throw unsupported(st, `${path}.payload`, "raw payload expression", "raw payload");
    }
    const text = `${proto} ${field}`;
    const l4 = (n: number, name: string) => ({ l4dep: NumSet.of(n), l4depText: name });
    switch (proto) {
      case "ip":
      case "ip6": {
        const fam = proto === "ip" ? 4 : 6;
        const nfdep = family === "ip" || family === "ip6" ? 0 : fam;
        if (field === "saddr" || field === "daddr") return { ...base, nfdep, sel: field, vt: { k: "addr", family: fam }, text };
        if ((proto === "ip" && field === "protocol") || (proto === "ip6" && field === "nexthdr")) {
          return { ...base, nfdep, sel: "l4proto", vt: NUM(PROTO_NUM, 255), text };
        }
        if ((proto === "ip" && field === "ttl") || (proto === "ip6" && field === "hoplimit")) return { ...base, nfdep, sel: "ttl", vt: NUM({}, 255), text };
        break;
      }
      case "tcp":
      case "udp":
      case "udplite":
      case "sctp":
      case "dccp": {
        const n = PROTO_NUM[proto] as number;
        if (field === "sport" || field === "dport") return { ...base, ...l4(n, proto), sel: field, vt: NUM({}, 65535), text };
        if (proto === "tcp" && field === "flags") return { ...base, ...l4(6, "tcp"), sel: "tcpflags", vt: NUM(TCP_FLAG_BITS, 255), text };
        break;
      }
      case "th":
        if (field === "sport" || field === "dport") {
          return { ...base, l4dep: new NumSet(PORT_PROTOS.flatMap((x) => [x, x])), l4depText: "th", sel: field, vt: NUM({}, 65535), text };
        }
        break;
      case "icmp":
      case "icmpv6": {
        const v6 = proto === "icmpv6";
        const dep = l4(v6 ? 58 : 1, v6 ? "ipv6-icmp" : "icmp");
        if (field === "type") return { ...base, ...dep, sel: "icmptype", vt: NUM(icmpTypeNums(v6), 255), text };
        if (field === "code") return { ...base, ...dep, sel: "icmpcode", vt: NUM(v6 ? ICMPV6_CODE_NAMES : ICMP_CODE_NAMES, 255), text };
        break;
      }
    }
    throw unsupported(st, `${path}.payload`, `payload field ${q(text)}`, `payload ${text}`);
  }
  if (isObj(e) && isObj(e["meta"])) {
    const key = e["meta"]["key"];
    const text = `meta ${jsonText(key)}`;
    switch (key) {
      case "iifname":
      case "iif":
        return { ...base, sel: "iifname", vt: { k: "str" }, text };
      case "oifname":
      case "oif":
        return { ...base, sel: "oifname", vt: { k: "str" }, text };
      case "l4proto":
        return { ...base, sel: "l4proto", vt: NUM(PROTO_NUM, 255), text };
      case "nfproto":
        return { ...base, sel: "nfproto", vt: NUM({ ipv4: 2, ipv6: 10 }, 255), text };
      case "mark":
        return { ...base, sel: "mark", vt: NUM(), text };
      case "length":
        return { ...base, sel: "length", vt: NUM(), text };
    }
    throw unsupported(st, `${path}.meta`, `meta key ${q(jsonText(key))}`, `meta ${jsonText(key)}`);
  }
  if (isObj(e) && isObj(e["ct"])) {
    const c = e["ct"];
    const key = typeof c["key"] === "string" ? c["key"] : "";
    const dir = c["dir"];
    const text = `ct ${typeof dir === "string" ? dir + " " : ""}${key}`;
    switch (key) {
      case "state":
        return { ...base, sel: "ctstate", vt: NUM(CTSTATE_BITS), text };
      case "status":
        return { ...base, sel: "ctstatus", vt: NUM(CTSTATUS_BITS), text };
      case "mark":
        return { ...base, sel: "ctmark", vt: NUM(), text };
      case "direction":
        return { ...base, sel: "ctdirection", vt: NUM({ original: 0, reply: 1 }, 1), text };
      case "zone":
        return { ...base, sel: "ctzone", vt: NUM({}, 65535), text };
      case "saddr":
      case "daddr":
      case "ip saddr":
      case "ip daddr":
      case "ip6 saddr":
      case "ip6 daddr": {
        if (dir !== "original" && dir !== "reply") throw err(st, `${path}.ct`, `${q(text)} needs a direction`);
        const fam: 4 | 6 = key.startsWith("ip6") || c["family"] === "ip6" ? 6 : 4;
        const sd = key.endsWith("saddr") ? "src" : "dst";
        return {
          ...base,
          sel: sd === "src" ? "saddr" : "daddr",
          vt: { k: "addr", family: fam },
          ctField: `${dir === "original" ? "orig" : "repl"}${sd}` as CtTupleField,
          text,
        };
      }
      case "proto-src":
      case "proto-dst": {
        if (dir !== "original" && dir !== "reply") throw err(st, `${path}.ct`, `${q(text)} needs a direction`);
        const sd = key === "proto-src" ? "src" : "dst";
        return {
          ...base,
          sel: sd === "src" ? "sport" : "dport",
          vt: NUM({}, 65535),
          ctField: `${dir === "original" ? "orig" : "repl"}${sd}` as CtTupleField,
          text,
        };
      }
    }
    throw unsupported(st, `${path}.ct`, `ct key ${q(key)}`, `ct ${key}`);
  }
  if (isObj(e) && Array.isArray(e["concat"])) throw err(st, path, "concatenation is only valid as a whole lookup key");
  throw unsupported(st, path, `expression ${q(Object.keys(isObj(e) ? e : {})[0] ?? JSON.stringify(e))}`, "expression");
}

/** Resolves a right-hand side to elements: a value, list, anonymous set or named set. */
function rightElems(
  st: St,
  t: Table,
  vts: readonly VType[],
  right: Json,
  path: string,
): { elems: Elem[]; setName: string | null; set: NamedSet | null; isSet: boolean } {
  if (typeof right === "string" && right.startsWith("@")) {
    const set = namedSet(st, t, right, path);
    if (set.keyTypes.length !== vts.length) throw err(st, path, `set ${q(set.name)} has ${set.keyTypes.length} key(s), the expression ${vts.length}`);
    return { elems: set.elems, setName: set.name, set, isSet: true };
  }
  if (isObj(right) && Array.isArray(right["set"])) {
    const elems: Elem[] = [];
    right["set"].forEach((e, i) => elems.push(...elemsOf(st, vts, e, `${path}.set[${i}]`)));
    return { elems, setName: null, set: null, isSet: true };
  }
  return { elems: elemsOf(st, vts, right, path), setName: null, set: null, isSet: false };
}

function namedSet(st: St, t: Table, ref: string, path: string): NamedSet {
  const set = t.sets.get(ref.slice(1));
  if (!set) throw err(st, path, `set ${q(ref.slice(1))} does not exist in table ${q(t.name)}`);
  return set;
}

/** Route types `fib ... type` compares with (nft's fib_type names). */
const FIB_TYPES: Readonly<Record<string, number>> = {
  unspec: 0,
  unicast: 1,
  local: 2,
  broadcast: 3,
  anycast: 4,
  multicast: 5,
  blackhole: 6,
  unreachable: 7,
  prohibit: 8,
};

/** `fib saddr . iif oif missing`, `fib daddr type local`, … → one fib match. */
function convertFib(st: St, fib: Obj, op: string, right: Json, path: string): Match {
  const result = fib["result"];
  const flagsV = fib["flags"];
  const flags = typeof flagsV === "string" ? [flagsV] : Array.isArray(flagsV) ? flagsV.filter((x): x is string => typeof x === "string") : [];
  if (result !== "type" && result !== "oif" && result !== "oifname")
    throw unsupported(st, `${path}.left.fib.result`, `fib result ${q(jsonText(result))}`, "fib");
  const addr = flags.includes("saddr") ? "saddr" : flags.includes("daddr") ? "daddr" : null;
  if (!addr || (flags.includes("saddr") && flags.includes("daddr"))) throw err(st, `${path}.left.fib.flags`, "fib needs exactly one of saddr and daddr");
  if (flags.includes("iif") && flags.includes("oif")) throw err(st, `${path}.left.fib.flags`, "fib takes iif or oif, not both");
  for (const f of flags) if (!["saddr", "daddr", "iif", "oif", "mark"].includes(f)) throw unsupported(st, `${path}.left.fib.flags`, `fib flag ${q(f)}`, "fib");
  if (op !== "==" && op !== "!=" && op !== "in") throw unsupported(st, `${path}.op`, `operator ${q(op)} on fib`, "fib");
  const values: Json[] = isObj(right) && Array.isArray(right["set"]) ? right["set"] : [right];
  let types = 0;
  const names: IfacePattern[] = [];
  let missing = false;
  values.forEach((v, i) => {
    const vp = isObj(right) && Array.isArray(right["set"]) ? `${path}.right.set[${i}]` : `${path}.right`;
    if (result === "type") {
      const n = typeof v === "string" ? FIB_TYPES[v] : typeof v === "number" ? v : undefined;
      if (n === undefined || n > 31) throw err(st, vp, `unknown route type ${q(stringify(v))}`);
      types |= 1 << n;
    } else if (v === false || v === "0" || v === 0) missing = true;
    else if (typeof v === "string") names.push(parseIface(v, "*"));
    else throw err(st, vp, `expected an interface name or ${q("missing")}`);
  });
  // ("missing" with other names cannot be written in nft; keep it simple.)
  return { kind: "fib", neg: op === "!=", addr, iif: flags.includes("iif"), oif: flags.includes("oif"), result, types, names, missing };
}

/** A `match` statement → matches (dependencies first). */
function convertMatch(st: St, t: Table, m: Obj, path: string, deps: Set<string>): Match[] {
  const op = m["op"] === undefined ? "==" : m["op"];
  if (typeof op !== "string" || !["==", "!=", "in", "<", ">", "<=", ">="].includes(op)) throw err(st, `${path}.op`, `unknown operator ${q(jsonText(op))}`);
  const left = m["left"];
  const right = m["right"];
  if (left === undefined || right === undefined) throw err(st, path, `a match needs ${q("left")} and ${q("right")}`);
  const out: Match[] = [];
  const addDeps = (li: LeftInfo) => {
    if (li.ctField) return;
    if (li.nfdep && !deps.has(`nf${li.nfdep}`)) {
      deps.add(`nf${li.nfdep}`);
      out.push({ kind: "nfproto", neg: false, family: li.nfdep });
    }
    if (li.l4dep && !deps.has(`l4${li.l4depText}`)) {
      deps.add(`l4${li.l4depText}`);
      out.push({ kind: "proto", neg: false, protos: li.l4dep, text: li.l4depText });
    }
  };
  // Concatenations: a multi-key lookup.
  if (isObj(left) && Array.isArray(left["concat"])) {
    const infos = left["concat"].map((x, i) => leftInfo(st, x, `${path}.left.concat[${i}]`, t.family));
    for (const li of infos) {
      addDeps(li);
      if (li.ctField || li.mask !== 0xffffffff) throw unsupported(st, `${path}.left`, "conntrack tuple or masked field in a concatenation", "concat");
    }
    if (op !== "==" && op !== "!=" && op !== "in") throw err(st, `${path}.op`, `operator ${q(op)} cannot compare a concatenation`);
    const r = rightElems(
      st,
      t,
      infos.map((x) => x.vt),
      right,
      `${path}.right`,
    );
    out.push({ kind: "lookup", neg: op === "!=", keys: infos.map((x) => x.sel), elems: r.elems, setName: r.setName, set: r.set });
    return out;
  }
  const neg = op === "!=";
  if (isObj(left) && isObj(left["fib"])) {
    out.push(convertFib(st, left["fib"], op, right, path));
    return out;
  }
  // ct helper: a string compare.
  if (isObj(left) && isObj(left["ct"]) && left["ct"]["key"] === "helper") {
    if (typeof right !== "string") throw err(st, `${path}.right`, "expected a helper name");
    out.push({ kind: "cthelper", neg, name: right });
    return out;
  }
  const li = leftInfo(st, left, `${path}.left`, t.family);
  addDeps(li);
  if (op === "<" || op === ">" || op === "<=" || op === ">=") {
    const v = scalarValue(st, li.vt, right, `${path}.right`);
    if (v.t !== "num" || li.ctField) throw unsupported(st, `${path}.op`, `relational operator on ${q(li.text)}`, "relational");
    out.push({ kind: "cmp", key: li.sel, op, mask: li.mask, value: v.lo });
    return out;
  }
  const r = rightElems(st, t, [li.vt], right, `${path}.right`);
  const vals = r.elems.map((e) => e[0] as ElemValue);
  const nums = () => new NumSet(vals.flatMap((v) => (v.t === "num" ? [v.lo, v.hi] : [])));
  const bitmask = li.sel === "ctstate" || li.sel === "ctstatus" || li.sel === "tcpflags";
  if (li.ctField) {
    if (li.vt.k === "addr") {
      out.push({ kind: "ctaddr", field: li.ctField, neg, set: addrSetOf(li.vt.family, vals) });
    } else out.push({ kind: "ctport", field: li.ctField, neg, set: nums() });
    return out;
  }
  // Bitmask types: "in" (and a plain value given without operator) tests any bit;
  // a set tests the exact value; "==" tests equality after the mask.
  if (
    bitmask &&
    !r.isSet &&
    (op === "in" ||
      (op === "==" &&
        li.sel === "ctstate" &&
        vals.length === 1 &&
        (vals[0] as ElemValue).t === "num" &&
        popcount((vals[0] as { readonly t: "num"; readonly lo: number; readonly hi: number }).lo) === 1))
  ) {
    const v = vals[0];
    if (!v || v.t !== "num") throw err(st, `${path}.right`, "expected flags");
    if (li.sel === "ctstate") out.push({ kind: "ctstate", neg, mask: v.lo, text: stringify(right) });
    else if (li.sel === "ctstatus") out.push({ kind: "ctstatus", neg, mask: v.lo });
    else out.push({ kind: "tcpflags", op: "any", neg, mask: (v.lo & li.mask) >>> 0, comp: 0 });
    return out;
  }
  if (li.sel === "ctstate" && r.isSet && li.mask === 0xffffffff) {
    // ct state is one bit per packet, so set membership is a bit test.
    let mask = 0;
    for (const v of vals) if (v.t === "num") mask |= v.lo;
    out.push({ kind: "ctstate", neg, mask, text: stringify(right) });
    return out;
  }
  if (li.sel === "tcpflags" && !r.isSet && vals.length === 1 && (vals[0] as ElemValue).t === "num") {
    out.push({ kind: "tcpflags", op: "eq", neg, mask: li.mask & 0xff, comp: (vals[0] as { readonly t: "num"; readonly lo: number; readonly hi: number }).lo });
    return out;
  }
  // A set the packet path writes to stays a lookup, so that it sees the elements added at run time.
  const dynamic = r.set !== null && st.dynamicSets.has(`${t.family}|${t.name}|${r.set.name}`);
  if (li.mask === 0xffffffff && !dynamic) {
    switch (li.sel) {
      case "saddr":
      case "daddr":
        if (li.vt.k === "addr") {
          out.push({ kind: "addr", dir: li.sel === "saddr" ? "src" : "dst", neg, set: addrSetOf(li.vt.family, vals, stringify(right)) });
          return out;
        }
        break;
      case "sport":
      case "dport":
        out.push({
          kind: "port",
          dir: li.sel === "sport" ? "src" : "dst",
          neg,
          protos: li.l4dep ?? new NumSet(PORT_PROTOS.flatMap((x) => [x, x])),
          set: nums(),
        });
        return out;
      case "l4proto":
        out.push({ kind: "proto", neg, protos: nums(), text: stringify(right) });
        return out;
      case "nfproto":
        if (
          vals.length === 1 &&
          (vals[0] as ElemValue).t === "num" &&
          ((vals[0] as { readonly t: "num"; readonly lo: number; readonly hi: number }).lo === 2 ||
            (vals[0] as { readonly t: "num"; readonly lo: number; readonly hi: number }).lo === 10) &&
          (vals[0] as { readonly t: "num"; readonly lo: number; readonly hi: number }).lo ===
            (vals[0] as { readonly t: "num"; readonly lo: number; readonly hi: number }).hi
        ) {
          out.push({ kind: "nfproto", neg, family: (vals[0] as { readonly t: "num"; readonly lo: number; readonly hi: number }).lo === 2 ? 4 : 6 });
          return out;
        }
        break;
      case "iifname":
      case "oifname":
        out.push({ kind: "iface", dir: li.sel === "iifname" ? "in" : "out", neg, names: vals.flatMap((v) => (v.t === "str" ? [v.pattern] : [])) });
        return out;
      case "ctdirection":
        if (
          vals.length === 1 &&
          (vals[0] as ElemValue).t === "num" &&
          (vals[0] as { readonly t: "num"; readonly lo: number; readonly hi: number }).lo ===
            (vals[0] as { readonly t: "num"; readonly lo: number; readonly hi: number }).hi
        ) {
          out.push({ kind: "ctdir", neg, dir: (vals[0] as { readonly t: "num"; readonly lo: number; readonly hi: number }).lo === 0 ? 0 : 1 });
          return out;
        }
        break;
      case "icmptype": {
        const v6 = li.l4depText === "ipv6-icmp";
        out.push({
          kind: "icmp",
          v6,
          neg,
          types: new NumSet(vals.flatMap((v) => (v.t === "num" ? [v.lo * 256, v.hi * 256 + 255] : []))),
          text: stringify(right),
        });
        return out;
      }
    }
  }
  if (li.sel === "mark" || li.sel === "ctmark") {
    out.push({ kind: "mark", source: li.sel === "mark" ? "meta" : "ct", neg, mask: li.mask, values: nums() });
    return out;
  }
  if (li.mask !== 0xffffffff) {
    if (
      vals.length !== 1 ||
      (vals[0] as ElemValue).t !== "num" ||
      (vals[0] as { readonly t: "num"; readonly lo: number; readonly hi: number }).lo !==
        (vals[0] as { readonly t: "num"; readonly lo: number; readonly hi: number }).hi
    ) {
      throw unsupported(st, `${path}.right`, `set lookup of a masked ${q(li.text)}`, "masked lookup");
    }
    out.push({
      kind: "cmp",
      key: li.sel,
      op: neg ? "!=" : "==",
      mask: li.mask,
      value: (vals[0] as { readonly t: "num"; readonly lo: number; readonly hi: number }).lo,
    });
    return out;
  }
  out.push({ kind: "lookup", neg, keys: [li.sel], elems: r.elems, setName: r.setName, set: r.set });
  return out;
}

function popcount(x: number): number {
  let n = 0;
  for (let v = x >>> 0; v; v &= v - 1) n++;
  return n;
}

function addrSetOf(family: 4 | 6, vals: readonly ElemValue[], text?: string): AddrSet {
  const ranges = vals.flatMap((v) => (v.t === "addr" ? [{ lo: v.lo, hi: v.hi }] : []));
  const texts = text !== undefined ? [text] : ranges.map((r) => formatAddr(family, r.lo));
  return new AddrSet(family, ranges, texts);
}

function stringify(v: Json): string {
  return typeof v === "string" ? v : JSON.stringify(v);
}

// ---------------------------------------------------------------------------
// Statements

function readVerdict(st: St, t: Table, v: Json, path: string): Action {
  if (!isObj(v) || Object.keys(v).length !== 1) throw err(st, path, "expected a verdict");
  const k = Object.keys(v)[0] as string;
  const body = v[k] as string | number | boolean | Json[] | { [k: string]: Json };
  switch (k) {
    case "accept":
    case "drop":
    case "return":
    case "continue":
      return { kind: k };
    case "jump":
    case "goto": {
      const target = isObj(body) ? body["target"] : undefined;
      if (typeof target !== "string") throw err(st, `${path}.${k}.target`, "expected a chain name");
      if (!t.chainByName.has(target)) throw err(st, `${path}.${k}.target`, `chain ${q(target)} does not exist in table ${q(t.name)}`);
      return { kind: k, target };
    }
    case "queue":
      throw unsupported(st, path, `statement ${q("queue")}`, "queue");
    default:
      throw err(st, path, `unknown verdict ${q(k)}`);
  }
}

function readStatement(
  st: St,
  t: Table,
  s: Json,
  path: string,
  deps: Set<string>,
  acc: { matches: Match[]; actions: Action[]; counters: { packets: number; bytes: number }; counted: boolean; comment: string | null },
): void {
  if (!isObj(s) || Object.keys(s).length !== 1) throw err(st, path, "expected a statement object with one key");
  const k = Object.keys(s)[0] as string;
  // A JSON statement's body may be null (`{"counter": null}`, `{"log": null}`).
  const body = s[k] as Json;
  const p = keyPath(path, k);
  switch (k) {
    case "match":
      acc.matches.push(...convertMatch(st, t, objAt(st, body, p), p, deps));
      return;
    case "accept":
    case "drop":
    case "return":
    case "continue":
    case "jump":
    case "goto":
    case "queue":
      acc.actions.push(readVerdict(st, t, s, path));
      return;
    case "counter":
      if (typeof body === "string") acc.actions.push({ kind: "counter", name: body });
      else {
        if (isObj(body)) {
          acc.counters.packets = intAt(st, body["packets"] ?? 0, `${p}.packets`, 0, Number.MAX_SAFE_INTEGER);
          acc.counters.bytes = intAt(st, body["bytes"] ?? 0, `${p}.bytes`, 0, Number.MAX_SAFE_INTEGER);
        } else if (body !== null) throw err(st, p, "expected counter values or a counter name");
        acc.counted = true;
        acc.actions.push({ kind: "counter", name: null });
      }
      return;
    case "log": {
      const o = body === null ? {} : objAt(st, body, p);
      const levels = ["emerg", "alert", "crit", "err", "warn", "notice", "info", "debug"];
      const lv = o["level"];
      const level = typeof lv === "string" ? levels.indexOf(lv) : 4;
      const group = o["group"];
      acc.actions.push({
        kind: "log",
        nflog: group !== undefined,
        prefix: typeof o["prefix"] === "string" ? o["prefix"] : "",
        level: level < 0 ? 4 : level,
        group: typeof group === "number" ? group : -1,
      });
      return;
    }
    case "reject": {
      const o = body === null ? {} : objAt(st, body, p);
      const type = typeof o["type"] === "string" ? o["type"] : "icmpx";
      const expr = typeof o["expr"] === "string" ? o["expr"] : "";
      acc.actions.push({ kind: "reject", with: type === "tcp reset" ? "tcp reset" : `${type}${expr ? " " + expr : ""}` });
      return;
    }
    case "notrack":
      acc.actions.push({ kind: "notrack" });
      return;
    case "snat":
    case "dnat":
    case "masquerade":
    case "redirect":
      acc.actions.push(readNat(st, t, k, body, p));
      return;
    case "mangle":
      acc.actions.push(readMangle(st, objAt(st, body, p), p));
      return;
    case "set":
      acc.actions.push(readDynset(st, t, objAt(st, body, p), p, deps, acc));
      return;
    case "limit": {
      const o = objAt(st, body, p);
      const unit = o["rate_unit"];
      if (unit !== undefined && unit !== "packets") throw unsupported(st, `${p}.rate_unit`, `byte-rate ${q("limit")}`, "limit bytes");
      const per = o["per"] === undefined ? "second" : o["per"];
      const units: Record<string, number> = { second: 1, minute: 60, hour: 3600, day: 86400, week: 604800 };
      const unitSec = typeof per === "string" ? units[per] : undefined;
      if (!unitSec) throw err(st, `${p}.per`, `unknown time unit ${q(jsonText(per))}`);
      const rate = intAt(st, o["rate"], `${p}.rate`, 1, 0xffffffff);
      const burst = o["burst"] === undefined ? 5 : intAt(st, o["burst"], `${p}.burst`, 0, 0xffffffff);
      acc.matches.push({ kind: "limit", over: o["inv"] === true, rate, unitSec, burst, slot: st.rs.slots++ });
      return;
    }
    case "ct count": {
      const o = objAt(st, body, p);
      const val = intAt(st, o["val"], `${p}.val`, 0, 0xffffffff);
      acc.matches.push({ kind: "connlimit", above: o["inv"] === true, limit: val, maskLen: -1, key: "saddr", slot: st.rs.slots++ });
      return;
    }
    case "vmap":
      acc.actions.push(readVmap(st, t, objAt(st, body, p), p, deps, acc));
      return;
    case "ct helper":
      if (typeof body !== "string") throw err(st, p, "expected a helper object name");
      acc.actions.push({ kind: "cthelperset", name: body });
      return;
    case "ct timeout":
      if (typeof body !== "string") throw err(st, p, "expected a timeout object name");
      acc.actions.push({ kind: "ct", zone: 0, helper: "", timeout: body });
      return;
    case "flow":
      acc.actions.push({ kind: "flowoffload", flowtable: isObj(body) && typeof body["flowtable"] === "string" ? body["flowtable"].replace(/^@/, "") : "" });
      return;
    case "synproxy":
      acc.actions.push({ kind: "synproxy" });
      return;
    case "xt": {
      const o = isObj(body) ? body : {};
      const what = `${jsonText(o["type"] ?? "")} ${jsonText(o["name"] ?? "")}`.trim();
      throw err(
        st,
        p,
        `unsupported iptables-nft compat expression ${q(`xt ${what}`)}: read the iptables-save output of this ruleset instead, or ${SKIP_HINT}`,
        `xt ${what}`,
        true,
      );
    }
    default:
      throw unsupported(st, p, `statement ${q(k)}`, k);
  }
}

function readNat(st: St, t: Table, k: "snat" | "dnat" | "masquerade" | "redirect", body: Json, p: string): NatSpec {
  const o = body === null ? {} : objAt(st, body, p);
  const famS = o["family"];
  let family: 4 | 6 = t.family === "ip6" || famS === "ip6" ? 6 : 4;
  let addrLo: Uint32Array | null = null;
  let addrHi: Uint32Array | null = null;
  const addr = o["addr"];
  if (addr !== undefined) {
    if (typeof addr === "string") {
      const a = parseAddr(addr);
      if (!a) throw unsupported(st, `${p}.addr`, `NAT address ${q(addr)}`, "nat address");
      addrLo = addrHi = a.words;
      family = a.family;
    } else if (
      isObj(addr) &&
      Array.isArray(addr["range"]) &&
      addr["range"].length === 2 &&
      typeof addr["range"][0] === "string" &&
      typeof addr["range"][1] === "string"
    ) {
      const a = parseAddr(addr["range"][0]);
      const b = parseAddr(addr["range"][1]);
      if (!a || !b || a.family !== b.family) throw err(st, `${p}.addr.range`, "invalid address range");
      addrLo = a.words;
      addrHi = b.words;
      family = a.family;
    } else if (isObj(addr) && isObj(addr["prefix"])) {
      const v = scalarValue(st, { k: "addr", family }, addr, `${p}.addr`);
      if (v.t !== "addr") throw err(st, `${p}.addr`, "invalid prefix");
      addrLo = v.lo;
      addrHi = v.hi;
    } else throw unsupported(st, `${p}.addr`, "NAT address expression (map lookups and the like)", "nat map");
  }
  let portLo = -1;
  let portHi = -1;
  const port = o["port"];
  if (typeof port === "number") {
    portLo = portHi = intAt(st, port, `${p}.port`, 0, 65535);
  } else if (isObj(port) && Array.isArray(port["range"]) && port["range"].length === 2) {
    portLo = intAt(st, port["range"][0], `${p}.port.range[0]`, 0, 65535);
    portHi = intAt(st, port["range"][1], `${p}.port.range[1]`, 0, 65535);
    if (portHi < portLo) throw err(st, `${p}.port.range`, "range end is below its start");
  } else if (port !== undefined) throw unsupported(st, `${p}.port`, "NAT port expression", "nat map");
  if ((k === "snat" || k === "dnat") && !addrLo && portLo < 0) throw err(st, p, `${q(k)} needs an address or a port`);
  const flagsV = o["flags"];
  const flags = typeof flagsV === "string" ? [flagsV] : Array.isArray(flagsV) ? flagsV.filter((x): x is string => typeof x === "string") : [];
  return {
    kind: "nat",
    type: k,
    family,
    addrLo,
    addrHi,
    portLo,
    portHi,
    random: flags.includes("random"),
    fullyRandom: flags.includes("fully-random"),
    persistent: flags.includes("persistent"),
  };
}

function markKey(e: Json): "meta" | "ct" | null {
  if (isObj(e) && isObj(e["meta"]) && e["meta"]["key"] === "mark") return "meta";
  if (isObj(e) && isObj(e["ct"]) && e["ct"]["key"] === "mark" && e["ct"]["dir"] === undefined) return "ct";
  return null;
}

function readMangle(st: St, o: Obj, p: string): Action {
  const key = o["key"];
  const value = o["value"];
  // MSS clamping (`tcp option maxseg size set rt mtu` / `set 1400`): the
  // option is rewritten in SYNs; nf_conntrack_proto_tcp reads only the window
  // scale and SACK options, so conntrack sees nothing of it.
  if (isObj(key) && isObj(key["tcp option"])) {
    const opt = key["tcp option"];
    if (opt["name"] !== "maxseg" || opt["field"] !== "size")
      throw unsupported(st, `${p}.key`, `setting tcp option ${q(jsonText(opt["name"]))} ${q(jsonText(opt["field"]))}`, "tcp option set");
    const isRtMtu = isObj(value) && isObj(value["rt"]) && value["rt"]["key"] === "mtu";
    if (!isRtMtu) intAt(st, value, `${p}.value`, 0, 65535);
    return { kind: "mangle", name: "tcp option maxseg size" };
  }
  const target = markKey(key ?? null);
  if (isObj(key) && isObj(key["ct"]) && key["ct"]["key"] === "zone") {
    return { kind: "ct", zone: intAt(st, value, `${p}.value`, 0, 65535), helper: "", timeout: "" };
  }
  if (!target) throw unsupported(st, `${p}.key`, `${q("set")} of anything but meta mark, ct mark and ct zone`, "mangle");
  if (typeof value === "number") return { kind: "setmark", target, value: intAt(st, value, `${p}.value`, 0, 0xffffffff), mask: 0xffffffff };
  const src = markKey(value ?? null);
  if (src && src !== target) return { kind: "copymark", to: target, nfmask: 0xffffffff, ctmask: 0xffffffff };
  // mark set mark | v / & v / ^ v, as nft prints them.
  if (isObj(value)) {
    for (const op of ["|", "&", "^"] as const) {
      const args = value[op];
      if (Array.isArray(args) && args.length === 2 && markKey(args[0] as string | number | boolean | Json[] | { [k: string]: Json }) === target) {
        const v = intAt(st, args[1], `${p}.value["${op}"][1]`, 0, 0xffffffff);
        if (op === "|") return { kind: "setmark", target, value: v, mask: v };
        if (op === "&") return { kind: "setmark", target, value: 0, mask: ~v >>> 0 };
        return { kind: "setmark", target, value: v, mask: 0 };
      }
    }
  }
  throw unsupported(st, `${p}.value`, "mark expression", "mangle");
}

function readVmap(st: St, t: Table, o: Obj, p: string, deps: Set<string>, acc: { matches: Match[] }): Action {
  const key = o["key"];
  const data = o["data"];
  if (key === undefined || data === undefined) throw err(st, p, `a verdict map needs ${q("key")} and ${q("data")}`);
  const gen = isObj(key) && isObj(key["numgen"]) ? readNumgen(st, key["numgen"], `${p}.key.numgen`) : null;
  const infos = gen
    ? [{ sel: "numgen" as const, vt: NUM({}, 0xffffffff), ctField: null, mask: 0xffffffff, nfdep: 0 as const, l4dep: null, l4depText: "", text: "numgen" }]
    : isObj(key) && Array.isArray(key["concat"])
      ? key["concat"].map((x, i) => leftInfo(st, x, `${p}.key.concat[${i}]`, t.family))
      : [leftInfo(st, key, `${p}.key`, t.family)];
  for (const li of infos) {
    if (li.ctField || li.mask !== 0xffffffff) throw unsupported(st, `${p}.key`, "conntrack tuple or masked key in a verdict map", "vmap key");
    // Dependencies of the key become matches of the rule, as in the bytecode.
    if (li.nfdep && !deps.has(`nf${li.nfdep}`)) {
      deps.add(`nf${li.nfdep}`);
      acc.matches.push({ kind: "nfproto", neg: false, family: li.nfdep });
    }
    if (li.l4dep && !deps.has(`l4${li.l4depText}`)) {
      deps.add(`l4${li.l4depText}`);
      acc.matches.push({ kind: "proto", neg: false, protos: li.l4dep, text: li.l4depText });
    }
  }
  const vts = infos.map((x) => x.vt);
  const entries: Array<{ elem: Elem; verdict: Action }> = [];
  let mapName: string | null = null;
  if (typeof data === "string" && data.startsWith("@")) {
    const set = t.sets.get(data.slice(1));
    if (!set || !set.verdicts) throw err(st, `${p}.data`, `verdict map ${q(data.slice(1))} does not exist in table ${q(t.name)}`);
    mapName = set.name;
    const verdicts = set.verdicts;
    set.elems.forEach((e, i) => entries.push({ elem: e, verdict: verdicts[i] as Action }));
  } else if (isObj(data) && Array.isArray(data["set"])) {
    data["set"].forEach((pair, i) => {
      const pp = `${p}.data.set[${i}]`;
      if (!Array.isArray(pair) || pair.length !== 2) throw err(st, pp, "expected a [key, verdict] pair");
      const verdict = readVerdict(st, t, pair[1] as string | number | boolean | Json[] | { [k: string]: Json }, `${pp}[1]`);
      for (const elem of elemsOf(st, vts, pair[0] as string | number | boolean | Json[] | { [k: string]: Json }, `${pp}[0]`)) entries.push({ elem, verdict });
    });
  } else throw err(st, `${p}.data`, "expected an anonymous map or a map name");
  return { kind: "vmap", keys: infos.map((x) => x.sel), entries, mapName, gen };
}

/** `numgen random mod N offset O` / `numgen inc …`. */
function readNumgen(st: St, o: Obj, p: string): NumGen {
  const mode = o["mode"];
  if (mode !== "random" && mode !== "inc") throw unsupported(st, `${p}.mode`, `numgen mode ${q(jsonText(mode))}`, "numgen");
  const mod = intAt(st, o["mod"], `${p}.mod`, 1, 0xffffffff);
  const offset = o["offset"] === undefined ? 0 : intAt(st, o["offset"], `${p}.offset`, 0, 0xffffffff);
  // nft_ng_inc_init: the offset plus the modulus must not overflow a u32.
  if (offset + mod - 1 > 0xffffffff) throw err(st, p, "numgen offset and modulus overflow 32 bits");
  return { mode, mod, offset, slot: st.rs.slots++ };
}

/** `add @s { ip saddr timeout 30s }`, `update @s { … }`, `delete @s { … }` (nft_dynset). */
function readDynset(st: St, t: Table, o: Obj, p: string, deps: Set<string>, acc: { matches: Match[] }): Action {
  const op = o["op"];
  if (op !== "add" && op !== "update" && op !== "delete") throw unsupported(st, `${p}.op`, `set statement ${q(jsonText(op))}`, "set statement");
  const ref = o["set"];
  if (typeof ref !== "string" || !ref.startsWith("@")) throw err(st, `${p}.set`, 'expected a set name such as "@blocklist"');
  const set = namedSet(st, t, ref, `${p}.set`);
  if (set.verdicts) throw unsupported(st, `${p}.set`, "updating a map from the packet path", "set statement");
  let elem = o["elem"];
  let timeoutMs = -1;
  let ep = `${p}.elem`;
  if (isObj(elem) && isObj(elem["elem"])) {
    const inner = elem["elem"];
    if (inner["timeout"] !== undefined) timeoutMs = intAt(st, inner["timeout"], `${ep}.elem.timeout`, 0, 0xffffffff) * 1000;
    for (const k of Object.keys(inner))
      if (k !== "val" && k !== "timeout") throw unsupported(st, `${ep}.elem.${k}`, `set element option ${q(k)}`, "set statement");
    elem = inner["val"];
    ep = `${ep}.elem.val`;
  }
  if (elem === undefined) throw err(st, ep, "the set statement needs an element");
  const parts = isObj(elem) && Array.isArray(elem["concat"]) ? elem["concat"] : [elem];
  const infos = parts.map((x, i) => leftInfo(st, x, parts.length > 1 ? `${ep}.concat[${i}]` : ep, t.family));
  if (infos.length !== set.keyTypes.length) throw err(st, ep, `set ${q(set.name)} has ${set.keyTypes.length} key(s), the element ${infos.length}`);
  for (const li of infos) {
    if (li.ctField || li.mask !== 0xffffffff) throw unsupported(st, ep, "conntrack tuple or masked field as a set element", "set statement");
    if (li.nfdep && !deps.has(`nf${li.nfdep}`)) {
      deps.add(`nf${li.nfdep}`);
      acc.matches.push({ kind: "nfproto", neg: false, family: li.nfdep });
    }
    if (li.l4dep && !deps.has(`l4${li.l4depText}`)) {
      deps.add(`l4${li.l4depText}`);
      acc.matches.push({ kind: "proto", neg: false, protos: li.l4dep, text: li.l4depText });
    }
  }
  return { kind: "dynset", op, set, keys: infos.map((x) => x.sel), timeoutMs };
}

function readRule(st: St, body: Json, path: string): void {
  const o = objAt(st, body, path);
  const t = tableOf(st, o, path);
  const chainName = str(st, o, "chain", path);
  const chain: Chain | undefined = t.chainByName.get(chainName);
  if (!chain) throw err(st, keyPath(path, "chain"), `chain ${q(chainName)} does not exist in table ${q(t.name)}`);
  const expr = o["expr"];
  if (!Array.isArray(expr)) throw err(st, keyPath(path, "expr"), "expected an array of statements");
  const acc = {
    matches: [] as Match[],
    actions: [] as Action[],
    counters: { packets: 0, bytes: 0 },
    counted: false,
    comment: typeof o["comment"] === "string" ? o["comment"] : null,
  };
  const deps = new Set<string>();
  let unsupportedFeature: string | null = null;
  try {
    expr.forEach((s, i) => readStatement(st, t, s, `${path}.expr[${i}]`, deps, acc));
  } catch (e) {
    if (!(e instanceof RulesetSyntaxError) || !e.unsupported || !st.allowUnsupported) throw e;
    unsupportedFeature = e.feature;
    st.rs.skipped.push({ pos: jsonPos(st.file, e.jsonPath), feature: e.feature, message: e.message, text: renderRule(expr) });
    acc.matches = [{ kind: "never", feature: e.feature }];
    acc.actions = [];
  }
  const handle = typeof o["handle"] === "number" ? o["handle"] : -1;
  const rule: Rule = {
    id: st.ruleId++,
    family: t.family,
    table: t.name,
    chain: chain.name,
    matches: acc.matches,
    actions: acc.actions,
    counters: acc.counters,
    counted: acc.counted,
    pos: jsonPos(st.file, path),
    text: renderRule(expr) + (acc.comment !== null ? ` comment ${JSON.stringify(acc.comment)}` : ""),
    comment: acc.comment,
    unsupported: unsupportedFeature,
    handle,
  };
  chain.rules.push(rule);
}

// ---------------------------------------------------------------------------
// Rendering JSON statements as nft text (for display; best effort)

function renderValue(v: Json): string {
  if (typeof v === "string") return v.startsWith("@") ? v : /^[A-Za-z0-9_.:/*-]+$/.test(v) ? v : JSON.stringify(v);
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (v === null) return "";
  if (Array.isArray(v)) return v.map(renderValue).join(",");
  if (isObj(v["set"]) || Array.isArray(v["set"])) return `{ ${(v["set"] as Json[]).map(renderValue).join(", ")} }`;
  if (isObj(v["prefix"])) return `${renderValue(v["prefix"]["addr"] ?? null)}/${renderValue(v["prefix"]["len"] ?? null)}`;
  if (Array.isArray(v["range"])) return `${renderValue(v["range"][0] ?? null)}-${renderValue(v["range"][1] ?? null)}`;
  if (Array.isArray(v["concat"])) return v["concat"].map(renderValue).join(" . ");
  if (isObj(v["elem"])) return renderValue(v["elem"]["val"] ?? null);
  if (isObj(v["payload"])) return `${renderValue(v["payload"]["protocol"] ?? null)} ${renderValue(v["payload"]["field"] ?? null)}`;
  if (isObj(v["meta"])) {
    const k = jsonText(v["meta"]["key"]);
    return ["iifname", "oifname", "iif", "oif", "mark", "l4proto", "nfproto"].includes(k) && k !== "mark" && k !== "l4proto" && k !== "nfproto"
      ? k
      : `meta ${k}`;
  }
  if (isObj(v["ct"])) return `ct ${v["ct"]["dir"] !== undefined ? renderValue(v["ct"]["dir"]) + " " : ""}${renderValue(v["ct"]["key"] ?? null)}`;
  for (const op of ["&", "|", "^"]) {
    const a = v[op];
    if (Array.isArray(a)) return a.map(renderValue).join(` ${op} `);
  }
  if (Array.isArray(v)) return (v as Json[]).map(renderValue).join(", ");
  if (Object.keys(v).length === 1) {
    const k = Object.keys(v)[0] as string;
    const b = v[k] as Json;
    if (b === null) return k;
    if (isObj(b) && typeof b["target"] === "string") return `${k} ${b["target"]}`;
  }
  return JSON.stringify(v);
}

function renderStmt(s: Json): string {
  if (!isObj(s)) return JSON.stringify(s);
  const k = Object.keys(s)[0] ?? "";
  const b = s[k] ?? null;
  switch (k) {
    case "match": {
      if (!isObj(b)) return "match";
      const op = b["op"];
      const opText = op === "==" || op === "in" || op === undefined ? "" : ` ${jsonText(op)}`;
      return `${renderValue(b["left"] ?? null)}${opText} ${renderValue(b["right"] ?? null)}`;
    }
    case "counter":
      return isObj(b)
        ? `counter packets ${renderValue(b["packets"] ?? 0)} bytes ${renderValue(b["bytes"] ?? 0)}`
        : typeof b === "string"
          ? `counter name ${JSON.stringify(b)}`
          : "counter";
    case "jump":
    case "goto":
      return isObj(b) ? `${k} ${renderValue(b["target"] ?? null)}` : k;
    case "log":
      return isObj(b) && typeof b["prefix"] === "string" ? `log prefix ${JSON.stringify(b["prefix"])}` : "log";
    case "reject":
      return isObj(b)
        ? `reject with ${typeof b["type"] === "string" ? b["type"] : "icmpx"}${b["expr"] !== undefined ? " type " + renderValue(b["expr"]) : ""}`
        : "reject";
    case "snat":
    case "dnat":
    case "masquerade":
    case "redirect": {
      if (!isObj(b)) return k;
      const addr = b["addr"] !== undefined ? renderValue(b["addr"]) : "";
      const port = b["port"] !== undefined ? `:${renderValue(b["port"])}` : "";
      return addr || port ? `${k} to ${addr}${port}` : k;
    }
    case "mangle":
      return isObj(b) ? `${renderValue(b["key"] ?? null)} set ${renderValue(b["value"] ?? null)}` : k;
    case "limit":
      return isObj(b)
        ? `limit rate ${b["inv"] === true ? "over " : ""}${renderValue(b["rate"] ?? null)}/${renderValue(b["per"] ?? "second")}${b["burst"] !== undefined ? ` burst ${renderValue(b["burst"])} packets` : ""}`
        : k;
    case "vmap":
      return isObj(b)
        ? `${renderValue(b["key"] ?? null)} vmap ${isObj(b["data"]) && Array.isArray(b["data"]["set"]) ? `{ ${b["data"]["set"].map((pr) => (Array.isArray(pr) ? `${renderValue(pr[0] ?? null)} : ${renderValue(pr[1] ?? null)}` : "")).join(", ")} }` : renderValue(b["data"] ?? null)}`
        : k;
    case "ct helper":
    case "ct timeout":
    case "ct expectation":
      return `${k} set ${JSON.stringify(typeof b === "string" ? b : "")}`;
    case "ct count":
      return isObj(b) ? `ct count ${b["inv"] === true ? "over " : ""}${renderValue(b["val"] ?? null)}` : k;
    case "xt":
      return isObj(b) ? `xt ${renderValue(b["type"] ?? null)} ${renderValue(b["name"] ?? null)}` : k;
    default:
      return b === null ? k : `${k} ${renderValue(b)}`;
  }
}

/** Renders a rule's statement array as one line of nft syntax (best effort, for reports). */
export function renderRule(expr: readonly Json[]): string {
  return expr.map(renderStmt).join(" ");
}
