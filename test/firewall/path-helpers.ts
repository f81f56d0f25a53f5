/**
 * A firewall rig for the packet-path and NAT tests: a ruleset (iptables-save
 * text or nft JSON), a tracker with a manual clock, a host model, and
 * packets built as real frames and decoded into one reused view.
 */
import { EventLineSink } from "../../src/conntrack/events.js";
import { Tracker } from "../../src/conntrack/tracker.js";
import { resetCounters } from "../../src/firewall/counters.js";
import { HostModel, parseLocalSpecs } from "../../src/firewall/host.js";
import type { HostModelOptions } from "../../src/firewall/host.js";
import { parseIptables } from "../../src/firewall/iptables.js";
import type { Chain, Rule, Ruleset } from "../../src/firewall/model.js";
import { parseNftJson } from "../../src/firewall/nft.js";
import { NetfilterPath } from "../../src/firewall/path.js";
import type { PathResult } from "../../src/firewall/path.js";
import { buildIcmp, buildTcp, buildUdp } from "../../src/packet/build.js";
import type { IcmpBuildOptions, TcpBuildOptions, UdpBuildOptions } from "../../src/packet/build.js";
import { decodeFrame } from "../../src/packet/decode.js";
import { PacketView } from "../../src/packet/view.js";

/** An iptables-save text from table blocks: `{ filter: ["-A INPUT …"], nat: […] }` with ACCEPT policies unless given. */
export function ipt(tables: Record<string, string[]>, policies: Record<string, string> = {}): string {
  const builtins: Record<string, string[]> = {
    raw: ["PREROUTING", "OUTPUT"],
    mangle: ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"],
    nat: ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
    filter: ["INPUT", "FORWARD", "OUTPUT"],
  };
  const out: string[] = [];
  for (const [t, rules] of Object.entries(tables)) {
    out.push(`*${t}`);
    for (const c of builtins[t] ?? []) out.push(`:${c} ${policies[`${t}:${c}`] ?? "ACCEPT"} [0:0]`);
    const user = new Set<string>();
    for (const r of rules) {
      const m = /^-A (\S+)/.exec(r);
      if (m && !(builtins[t] ?? []).includes(m[1]!)) user.add(m[1]!);
    }
    for (const u of user) out.push(`:${u} - [0:0]`);
    out.push(...rules, "COMMIT");
  }
  return out.join("\n") + "\n";
}

/** Options of {@link rig}. */
export interface FwOptions {
  /** `--local` values ([IFACE=]ADDR[/LEN]). */
  local?: string[];
  host?: HostModelOptions;
  sysctls?: Record<string, number>;
  seed?: number;
  enableHooks?: boolean;
  random32?: () => number;
  /** Receives expectation events (`conntrack -E expect`). */
  expectEvents?: (kind: "NEW" | "DESTROY", line: string) => void;
}

export interface Fw {
  rs: Ruleset;
  tr: Tracker;
  path: NetfilterPath;
  events: EventLineSink;
  now: number;
  tcp(o: TcpBuildOptions): PathResult;
  udp(o: UdpBuildOptions): PathResult;
  icmp(o: IcmpBuildOptions): PathResult;
  /** The view of the last packet (as the last hook saw it). */
  view: PacketView;
  table(): string[];
  rule(chain: string, index: number, table?: string): Rule;
  chain(name: string, table?: string): Chain;
}

/** Builds the rig. `text` is iptables-save text or nft JSON. */
export function rig(text: string, o: FwOptions = {}): Fw {
  const rs = text.trimStart().startsWith("{") ? parseNftJson(text, { file: "test.json" }) : parseIptables(text, { file: "test.rules" });
  resetCounters(rs);
  let now = 1_700_000_000_000;
  const events = new EventLineSink({ extended: true });
  const tr = new Tracker({
    sysctls: { nf_conntrack_max: 4096, nf_conntrack_buckets: 1024, nf_conntrack_checksum: 0, ...o.sysctls },
    clock: { now: () => now },
    seed: o.seed ?? 7,
    events,
    ...(o.expectEvents ? { expectEvents: o.expectEvents } : {}),
  });
  const host = new HostModel({ ...o.host, addrs: [...(o.host?.addrs ?? []), ...parseLocalSpecs(o.local ?? [], "eth0")] });
  const path = new NetfilterPath({
    ruleset: rs,
    tracker: tr,
    host,
    ...(o.enableHooks ? { enableHooks: true } : {}),
    ...(o.random32 ? { random32: o.random32 } : { seed: o.seed ?? 7 }),
  });
  const view = new PacketView();
  const run = (frame: Uint8Array): PathResult => {
    decodeFrame(view.setFrame(frame));
    now += 1;
    path.run(view, now);
    return path.result;
  };
  const fw: Fw = {
    rs,
    tr,
    path,
    events,
    get now() {
      return now;
    },
    set now(v: number) {
      now = v;
    },
    tcp: (x) => run(buildTcp({ win: 64240, ...x })),
    udp: (x) => run(buildUdp(x)),
    icmp: (x) => run(buildIcmp(x)),
    view,
    table: () =>
      tr
        .formatTable({ extended: true })
        .map((l) => l.replace(/^ipv4 +2 /, "").replace(/ +mark=0 use=1$/, ""))
        .sort(),
    rule: (chain, index, table = "filter") => {
      const c = fw.chain(chain, table);
      const r = c.rules[index];
      if (!r) throw new Error(`no rule ${index} in ${table} ${chain}`);
      return r;
    },
    chain: (name, table = "filter") => {
      for (const t of rs.tables) if (t.name === table && t.chainByName.has(name)) return t.chainByName.get(name)!;
      throw new Error(`no chain ${table} ${name}`);
    },
  };
  return fw;
}
