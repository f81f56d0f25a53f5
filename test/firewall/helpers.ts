/** Shared helpers for the firewall tests: the corpus, packet builders. */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { CT_STATE } from "../../src/conntrack/constants.js";
import { EvalState, PacketContext, createHost, xorshift32 } from "../../src/firewall/eval.js";
import type { EvalHost } from "../../src/firewall/eval.js";
import type { Chain, HookName, Ruleset } from "../../src/firewall/model.js";
import { parseAddr } from "../../src/firewall/values.js";

/** Directory of the committed corpus (tests run from dist/test/firewall). */
export const CORPUS = fileURLToPath(new URL("../../../test/firewall/rulesets/", import.meta.url));

/** Reads a corpus file. */
export function corpus(name: string): string {
  return readFileSync(CORPUS + name, "utf8");
}

/** A packet description for {@link packet}. */
export interface Pkt {
  src?: string;
  dst?: string;
  proto?: number | "tcp" | "udp" | "icmp" | "icmpv6" | "sctp";
  sport?: number;
  dport?: number;
  flags?: number;
  icmpType?: number;
  icmpCode?: number;
  len?: number;
  ttl?: number;
  iif?: string;
  oif?: string;
  hook?: HookName;
  mark?: number;
  ct?: "new" | "established" | "related" | "invalid" | "untracked";
  ctStatus?: number;
  ctMark?: number;
  ctDir?: 0 | 1;
  nowMs?: number;
  fragOffset?: number;
}

const PROTOS: Record<string, number> = { tcp: 6, udp: 17, icmp: 1, icmpv6: 58, sctp: 132 };

/** Fills a (reused or new) PacketContext from a description. */
export function packet(d: Pkt, ctx = new PacketContext()): PacketContext {
  const p = ctx.p;
  p.resetDecoded();
  const src = parseAddr(d.src ?? "198.51.100.7");
  const dst = parseAddr(d.dst ?? "192.0.2.1");
  if (!src || !dst) throw new Error("bad address in test packet");
  p.family = src.family;
  p.src.set(src.words);
  p.dst.set(dst.words);
  p.proto = typeof d.proto === "string" ? PROTOS[d.proto]! : (d.proto ?? 6);
  p.l4Ok = true;
  p.sport = d.sport ?? 40000;
  p.dport = d.dport ?? 80;
  p.tcpFlags = d.flags ?? (p.proto === 6 ? 0x02 : 0);
  p.icmpType = d.icmpType ?? -1;
  p.icmpCode = d.icmpCode ?? -1;
  p.l3Len = d.len ?? 60;
  p.ttl = d.ttl ?? 64;
  if (d.fragOffset) {
    p.isFragment = true;
    p.fragOffset = d.fragOffset;
  }
  ctx.hook = d.hook ?? "input";
  ctx.iif = d.iif ?? "";
  ctx.oif = d.oif ?? "";
  ctx.mark = d.mark ?? 0;
  const st = d.ct ?? "new";
  ctx.ctState =
    st === "new"
      ? CT_STATE.NEW
      : st === "established"
        ? CT_STATE.ESTABLISHED
        : st === "related"
          ? CT_STATE.RELATED
          : st === "invalid"
            ? CT_STATE.INVALID
            : CT_STATE.UNTRACKED;
  ctx.ctStatus = d.ctStatus ?? 0;
  ctx.ctMark = d.ctMark ?? 0;
  ctx.ctDir = d.ctDir ?? 0;
  ctx.ctProto = p.proto;
  ctx.nowMs = d.nowMs ?? 0;
  ctx.resetResults();
  return ctx;
}

/** A context wired to a ruleset: fresh state, deterministic random, simple host. */
export function contextFor(rs: Ruleset, host?: Partial<EvalHost>, seed = 42): PacketContext {
  const ctx = new PacketContext();
  ctx.state = EvalState.for(rs);
  const base = createHost({ random32: xorshift32(seed), localAddrs: [{ family: 4, words: parseAddr("192.0.2.1")!.words }] });
  ctx.host = { ...base, ...host };
  return ctx;
}

/** Finds a chain by table and name (throws when absent). */
export function chain(rs: Ruleset, table: string, name: string): Chain {
  const t = rs.tables.find((x) => x.name === table);
  const c = t?.chainByName.get(name);
  if (!c) throw new Error(`no chain ${table}/${name}`);
  return c;
}
