/**
 * The firewall side of the CLI: `replay --rules`, `rules analyze`,
 * `rules notrack` and `rules compare`. Ruleset problems become one CliError
 * line with the position (file:line:column or file:$.json.path).
 */
import { analyzeRuleset } from "../firewall/analysis/analyze.js";
import { analysisToJson, formatAnalysis } from "../firewall/analysis/format.js";
import { notrackRulesFor } from "../firewall/analysis/notrack.js";
import { countersToJson, formatIptablesListing, formatNftListing, iptablesSaveWithCounters, nftJsonWithCounters, resetCounters } from "../firewall/counters.js";
import { RulesetSyntaxError, formatPos } from "../firewall/errors.js";
import { VERDICT } from "../firewall/eval.js";
import { checkRoutingSysctl, HostModel, HostSpecError, isRoutingSysctl, parseLocalSpecs, readLocalHost, RT_DROP_NAMES } from "../firewall/host.js";
import type { HostModelOptions } from "../firewall/host.js";
import { parseIpsetSave } from "../firewall/ipset.js";
import { detectFormat, loadRuleset } from "../firewall/load.js";
import type { RulesetFormat } from "../firewall/load.js";
import type { Chain, IpSet, Rule, Ruleset } from "../firewall/model.js";
import { parseNftJson } from "../firewall/nft.js";
import { EnvironmentError } from "../host/environment.js";
import { convertNftText } from "../host/nft-text.js";
import { DROP_REASON_NAMES, ROUTE_NAMES } from "../firewall/path.js";
import type { NetfilterPath, PathResult } from "../firewall/path.js";
import type { PacketView } from "../packet/view.js";
import { formatIp } from "../packet/addr.js";
import { replay } from "../replay/replay.js";
import type { FirewallOptions, ReplayRun } from "../replay/replay.js";
import { formatBytes } from "../report/summary.js";
import { CliError } from "./errors.js";
import { checkInput, parseSeed, readInputText } from "./options.js";
import { engineSysctls } from "./sysctl-options.js";
import { LineWriter } from "./output.js";
import type { FirewallSection } from "./output.js";

/** A ruleset as read from a file, with what is needed to write it back. */
export interface LoadedRuleset {
  readonly ruleset: Ruleset;
  readonly format: RulesetFormat;
  /** The nft JSON the ruleset was parsed from (nft formats), for `--counters`. */
  readonly json: string | null;
}

function readText(file: string, what: string): string {
  return readInputText(file, what);
}

function rulesetError(e: unknown): never {
  if (e instanceof RulesetSyntaxError) throw new CliError(`Invalid ruleset at ${e.message}`, 1);
  if (e instanceof EnvironmentError) throw new CliError(e.message, 2);
  throw e;
}

/** Options that say how to read a ruleset. */
export interface RulesetFileOptions {
  ipset?: string;
  allowUnsupported?: boolean;
}

/**
 * Reads a ruleset file (iptables-save, nft JSON, or nft text through a
 * scratch namespace) and resets its counters: a replay counts from zero, as
 * after loading without `-c`.
 * @throws {CliError} for unreadable files and invalid rulesets
 */
export function loadRulesetFile(file: string, opts: RulesetFileOptions = {}): LoadedRuleset {
  const text = readText(file, "ruleset");
  const name = file === "-" ? "<stdin>" : file;
  let ipsets: Map<string, IpSet> | undefined;
  if (opts.ipset !== undefined) {
    try {
      ipsets = parseIpsetSave(readText(opts.ipset, "ipset file"), opts.ipset);
    } catch (e) {
      rulesetError(e);
    }
  }
  try {
    const format = detectFormat(text, name);
    let ruleset: Ruleset;
    let json: string | null = null;
    if (format === "nft-text") {
      json = convertNftText(text, { file: name });
      ruleset = parseNftJson(json, { file: `${name} (as nft -j list ruleset)`, allowUnsupported: opts.allowUnsupported === true });
    } else {
      if (format === "nft-json") json = text;
      ruleset = loadRuleset(text, { file: name, format, allowUnsupported: opts.allowUnsupported === true, ...(ipsets ? { ipsets } : {}) });
    }
    resetCounters(ruleset);
    return { ruleset, format, json };
  } catch (e) {
    rulesetError(e);
  }
}

/** Options that describe the host. */
export interface HostCliOptions {
  /** `--sysctl` values; the routing ones (net.ipv4.conf.*, ip_forward) describe the host. */
  sysctl?: string[];
  local?: string[];
  localFromHost?: boolean;
  iif?: string;
  oif?: string;
}

/**
 * The host model of the command line: `--local`, `--local-from-host`,
 * `--iif`, `--oif`, and the routing sysctls of `--sysctl-file` (`fromFiles`,
 * see engineSysctls) with `--sysctl` over them.
 */
export function hostFromOptions(opts: HostCliOptions, fromFiles: Readonly<Record<string, number>> = {}): HostModel {
  const iif = typeof opts.iif === "string" ? opts.iif : null;
  const oif = typeof opts.oif === "string" ? opts.oif : null;
  try {
    let base: HostModelOptions = {};
    if (opts.localFromHost === true) base = readLocalHost();
    const extra = parseLocalSpecs(opts.local ?? [], iif ?? base.defaultIface ?? "eth0");
    const sysctls: Record<string, number> = { ...fromFiles };
    for (const a of opts.sysctl ?? []) {
      const eq = a.indexOf("=");
      const name = a.slice(0, Math.max(0, eq)).trim();
      if (eq < 0 || !isRoutingSysctl(name)) continue;
      const text = a.slice(eq + 1).trim();
      const v = /^[0-9]+$/.test(text) ? Number(text) : Number.NaN;
      checkRoutingSysctl(name, v);
      sysctls[name] = v;
    }
    return new HostModel({ ...base, addrs: [...(base.addrs ?? []), ...extra], iif, oif, sysctls });
  } catch (e) {
    if (e instanceof HostSpecError) throw new CliError(e.message, e.message.startsWith("Cannot read") ? 2 : 1);
    throw e;
  }
}

// ---------------------------------------------------------------------------
// replay --rules

/** JSON-ready summary of a firewall run. */
export function firewallSummary(path: NetfilterPath, loaded: LoadedRuleset): Record<string, unknown> {
  const rs = path.ruleset;
  const st = path.stats;
  const drops: Array<Record<string, unknown>> = [];
  for (const [c, n] of path.chainDrops) drops.push({ family: c.family, table: c.table, chain: c.name, hook: c.base?.hook ?? null, packets: n });
  drops.sort((a, b) => (b["packets"] as number) - (a["packets"] as number));
  return {
    ruleset: rs.file,
    syntax: rs.syntax,
    format: loaded.format,
    skipped: rs.skipped.map((s) => ({ position: formatPos(s.pos), feature: s.feature, text: s.text })),
    conntrack: { ipv4: path.conntrackOn.ipv4, ipv6: path.conntrackOn.ipv6 },
    nat: {
      ipv4: path.natOn.ipv4,
      ipv6: path.natOn.ipv6,
      translated: path.nat.counters.translated,
      null_bindings: path.nat.counters.nullBindings,
      searched: path.nat.counters.searched,
      exhausted: path.nat.counters.exhausted,
    },
    host: path.host.describe(),
    packets: {
      total: st.packets,
      accepted: st.accepted,
      dropped: st.dropped,
      input: st.byRoute.input,
      forward: st.byRoute.forward,
      output: st.byRoute.output,
      translated: st.translated,
      tracked: st.tracked,
      not_tracked: st.notTracked,
      untracked: st.untracked,
    },
    drops: { ...st.dropsByReason, by_chain: drops, routing: { ...st.routeDrops } },
    counters: countersToJson(rs),
  };
}

/** The human section printed after the replay summary. */
export function formatFirewallText(path: NetfilterPath, loaded: LoadedRuleset): string {
  const rs = path.ruleset;
  const st = path.stats;
  const n = (x: number) => x.toLocaleString("en-US");
  const rules = rs.tables.reduce((a, t) => a + t.chains.reduce((b, c) => b + c.rules.length, 0), 0);
  const out: string[] = [];
  out.push("", `Firewall: ${rs.file} (${loaded.format}, ${n(rules)} rules)`);
  const fams = [path.conntrackOn.ipv4 ? "IPv4" : "", path.conntrackOn.ipv6 ? "IPv6" : ""].filter(Boolean).join(" and ");
  if (fams === "")
    out.push("  Conntrack: not registered (no stateful match, NAT, connmark or CT template): nothing is tracked, the table stays empty, as in the kernel");
  else out.push(`  Conntrack: registered for ${fams}${path.natOn.ipv4 || path.natOn.ipv6 ? " (with NAT)" : ""}`);
  const host = path.host.describe();
  if (host.length === 0) out.push("  Host: no local addresses (--local): every packet was routed as forwarded");
  else out.push(`  Host: ${host.join(", ")}`);
  if (rs.skipped.length > 0) out.push(`  ${n(rs.skipped.length)} rule(s) use unsupported features and never match (--allow-unsupported)`);
  out.push(
    `  Packets: ${n(st.packets)} IP packets, ${n(st.accepted)} accepted, ${n(st.dropped)} dropped; ` +
      `input ${n(st.byRoute.input)}, forward ${n(st.byRoute.forward)}, output ${n(st.byRoute.output)}` +
      (st.translated > 0 ? `; ${n(st.translated)} translated by NAT` : ""),
  );
  const d = st.dropsByReason;
  const parts: string[] = [];
  if (d.rule) parts.push(`${n(d.rule)} by rules`);
  if (d.policy) parts.push(`${n(d.policy)} by chain policies`);
  if (d.conntrack) parts.push(`${n(d.conntrack)} by conntrack`);
  if (d.nat) parts.push(`${n(d.nat)} by NAT`);
  if (d.confirm) parts.push(`${n(d.confirm)} at confirmation`);
  if (d.route) parts.push(`${n(d.route)} by routing`);
  if (parts.length > 0) out.push(`  Drops: ${parts.join(", ")}`);
  out.push(...routeDropLines(path));
  const chains = [...path.chainDrops].sort((a, b) => b[1] - a[1]);
  for (const [c, k] of chains) out.push(`    ${c.family} ${c.table} ${c.name}: ${n(k)} dropped`);
  const nc = path.nat.counters;
  if (nc.translated + nc.searched > 0) {
    out.push(
      `  NAT: ${n(nc.translated)} connections translated, ${n(nc.searched)} needed a port search${nc.exhausted ? `, ${n(nc.exhausted)} found no free tuple` : ""}`,
    );
  }
  out.push("", rs.syntax === "iptables" ? "Per-rule counters (iptables -L -v -n -x)" : "Per-rule counters");
  out.push(rs.syntax === "iptables" ? formatIptablesListing(rs).trimEnd() : formatNftListing(rs).trimEnd());
  return out.join("\n") + "\n";
}

/** One line per route-drop reason that happened: never confirmed, as in the kernel. */
function routeDropLines(path: NetfilterPath): string[] {
  const out: string[] = [];
  const rd = path.stats.routeDrops as unknown as Record<string, number>;
  const keys = Object.keys(rd);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] as string;
    const v = rd[k] as number;
    if (v > 0) out.push(`    routing: ${v.toLocaleString("en-US")} ${RT_DROP_NAMES[i + 2] ?? k} (never confirmed)`);
  }
  return out;
}

/** `replay` with host options and no ruleset: the route decision's section of the summary. */
export function hostSection(path: NetfilterPath): { text: string; json: Record<string, unknown>; stdoutTaken: boolean; key: string } {
  const st = path.stats;
  const n = (x: number) => x.toLocaleString("en-US");
  const host = path.host.describe();
  const out = [
    "",
    `Host: ${host.length === 0 ? "no local addresses" : host.join(", ")}${path.host.iif !== null ? `; every packet arrived on ${path.host.iif}` : ""}`,
  ];
  out.push(
    `  Packets: ${n(st.packets)} IP packets, input ${n(st.byRoute.input)}, forward ${n(st.byRoute.forward)}, output ${n(st.byRoute.output)}; ${n(st.dropsByReason.route)} dropped by routing`,
  );
  out.push(...routeDropLines(path));
  return {
    text: out.join("\n") + "\n",
    json: {
      host: host,
      packets: { total: st.packets, input: st.byRoute.input, forward: st.byRoute.forward, output: st.byRoute.output },
      routeDrops: { ...st.routeDrops },
    },
    stdoutTaken: false,
    key: "host",
  };
}

/** Writes the ruleset with its counters as `iptables-save -c` or `nft -j list ruleset` would. */
export function countersText(loaded: LoadedRuleset): string {
  const rs = loaded.ruleset;
  if (rs.syntax === "iptables") return iptablesSaveWithCounters(rs);
  return nftJsonWithCounters(loaded.json ?? "{}", rs);
}

/** What `replay --rules` needs before and after the run. */
export interface PreparedFirewall {
  readonly loaded: LoadedRuleset;
  readonly options: FirewallOptions;
  readonly counters: string | null;
  /** `--verdicts`: one line per IP packet. */
  readonly verdicts: LineWriter | null;
}

const STATE_NAMES: Readonly<Record<number, string>> = { 1: "invalid", 2: "established", 4: "related", 8: "new", 64: "untracked" };

/** One `--verdicts` line: number, verdict, route, ct state, the packet as captured, what decided. */
export function verdictLine(index: number, v: PacketView, r: PathResult): string {
  const verdict = r.verdict === VERDICT.ACCEPT ? "accept" : "drop";
  const state = r.state === 0 ? "-" : (STATE_NAMES[r.state] ?? String(r.state));
  let by: string;
  if (r.rule !== null) by = `${formatPos(r.rule.pos)} ${r.rule.text}`;
  else if (r.chain !== null) by = `policy of ${r.chain.family} ${r.chain.table} ${r.chain.name}`;
  else if (r.dropReason !== 0) by = DROP_REASON_NAMES[r.dropReason] ?? "";
  else by = "no chain";
  return `${index + 1}\t${verdict}\t${ROUTE_NAMES[r.route] ?? ""}\t${state}\t${describeCaptured(v)}\t${by}`;
}

/** Reads the ruleset and the host for `replay --rules`. */
export function prepareFirewall(opts: Record<string, unknown>, routingSysctls: Readonly<Record<string, number>> = {}): PreparedFirewall {
  const file = opts["rules"] as string;
  const loaded = loadRulesetFile(file, {
    ...(typeof opts["ipset"] === "string" ? { ipset: opts["ipset"] } : {}),
    allowUnsupported: opts["allowUnsupported"] === true,
  });
  const host = hostFromOptions(opts, routingSysctls);
  const verdicts = typeof opts["verdicts"] === "string" ? new LineWriter(opts["verdicts"]) : null;
  return {
    loaded,
    options: {
      ruleset: loaded.ruleset,
      host,
      enableHooks: opts["enableHooks"] === true,
      onPacket: verdicts === null ? null : (i, v, r) => verdicts.write(verdictLine(i, v, r)),
    },
    counters: typeof opts["counters"] === "string" ? opts["counters"] : null,
    verdicts,
  };
}

/** After the run: the counters file, and the text and JSON sections. */
export function finishFirewall(fw: PreparedFirewall, run: ReplayRun): FirewallSection {
  const path = run.path;
  if (path === null) throw new Error("Replay ran without its firewall");
  fw.verdicts?.close();
  if (fw.counters !== null) {
    const w = new LineWriter(fw.counters);
    w.write(countersText(fw.loaded).replace(/\n$/, ""));
    w.close();
  }
  return {
    text: formatFirewallText(path, fw.loaded),
    json: firewallSummary(path, fw.loaded),
    stdoutTaken: fw.counters === "-" || fw.verdicts?.toStdout === true,
  };
}

// ---------------------------------------------------------------------------
// rules analyze / notrack

/** `ctlab rules analyze FILE [--json]`. */
export function rulesAnalyzeCommand(file: string, opts: Record<string, unknown>): number {
  const { ruleset } = loadRulesetFile(file, {
    ...(typeof opts["ipset"] === "string" ? { ipset: opts["ipset"] } : {}),
    allowUnsupported: opts["allowUnsupported"] === true,
  });
  const a = analyzeRuleset(ruleset);
  if (opts["json"] === true) process.stdout.write(JSON.stringify(analysisToJson(a), null, 2) + "\n");
  else process.stdout.write(formatAnalysis(a, ruleset));
  return 0;
}

/** `ctlab rules notrack FILE --for SELECTOR`: the raw rules on stdout, warnings on stderr. */
export function rulesNotrackCommand(file: string, opts: Record<string, unknown>): number {
  const selector = opts["for"];
  if (typeof selector !== "string" || selector.trim() === "") throw new CliError('Option "--for" needs a traffic selector, e.g. --for "udp dport 53"');
  const { ruleset } = loadRulesetFile(file, {
    ...(typeof opts["ipset"] === "string" ? { ipset: opts["ipset"] } : {}),
    allowUnsupported: opts["allowUnsupported"] === true,
  });
  let s;
  try {
    s = notrackRulesFor(ruleset, selector);
  } catch (e) {
    if (e instanceof RulesetSyntaxError) throw new CliError(`Invalid selector "${selector}": ${e.detail} (column ${e.column})`, 1);
    throw e;
  }
  if (opts["json"] === true) {
    process.stdout.write(
      JSON.stringify(
        {
          selector,
          text: s.text,
          rules: s.rules.map((g) => ({ hook: g.hook, iptables: g.iptables, nft: g.nft })),
          warnings: s.warnings.map((w) => ({ code: w.code, severity: w.severity, message: w.message })),
        },
        null,
        2,
      ) + "\n",
    );
    return 0;
  }
  process.stdout.write(s.text);
  for (const w of s.warnings) process.stderr.write(`${w.severity}: ${w.message}\n`);
  return 0;
}

// ---------------------------------------------------------------------------
// rules compare

/** One packet's outcome under a ruleset, compactly. */
interface Outcomes {
  verdict: Uint8Array;
  /** Deciding rule id, or −1 − chain index for a policy, or −(1<<30) for no chain. */
  decision: Int32Array;
  count: number;
  chains: Chain[];
  chainIndex: Map<Chain, number>;
}

function newOutcomes(): Outcomes {
  return { verdict: new Uint8Array(1024), decision: new Int32Array(1024), count: 0, chains: [], chainIndex: new Map() };
}

const NO_CHAIN = -(1 << 30);

function record(o: Outcomes, i: number, r: PathResult): void {
  if (i >= o.verdict.length) {
    const v = new Uint8Array(o.verdict.length * 2);
    v.set(o.verdict);
    o.verdict = v;
    const d = new Int32Array(o.decision.length * 2);
    d.set(o.decision);
    o.decision = d;
  }
  o.verdict[i] = r.verdict === VERDICT.ACCEPT ? 1 : 0;
  if (r.rule !== null) o.decision[i] = r.rule.id;
  else if (r.chain !== null) {
    let k = o.chainIndex.get(r.chain);
    if (k === undefined) {
      k = o.chains.length;
      o.chains.push(r.chain);
      o.chainIndex.set(r.chain, k);
    }
    o.decision[i] = -1 - k;
  } else o.decision[i] = NO_CHAIN - r.dropReason;
  o.count = i + 1;
}

function decisionText(rs: Ruleset, o: Outcomes, i: number, byId: Map<number, Rule>): string {
  const d = o.decision[i] as number;
  const v = o.verdict[i] ? "accept" : "drop";
  if (d >= 0) {
    const r = byId.get(d);
    return r ? `${v} by ${formatPos(r.pos)} ${r.text}` : v;
  }
  if (d > NO_CHAIN) {
    const c = o.chains[-1 - d] as Chain;
    return `${v} by the policy of ${c.family} ${c.table} ${c.name}`;
  }
  const reason = NO_CHAIN - d;
  return reason > 0 ? `${v} by ${DROP_REASON_NAMES[reason]}` : `${v} (no chain decided)`;
}

/** The packet as captured (from its bytes: the view's fields may be translated by then). */
export function describeCaptured(p: PacketView): string {
  const d = p.data;
  const o = p.l3Off;
  const w = (x: number) => (((d[x] as number) << 24) | ((d[x + 1] as number) << 16) | ((d[x + 2] as number) << 8) | (d[x + 3] as number)) >>> 0;
  let src: string;
  let dst: string;
  if (p.family === 4) {
    src = formatIp(4, [w(o + 12), 0, 0, 0]);
    dst = formatIp(4, [w(o + 16), 0, 0, 0]);
  } else {
    src = formatIp(6, [w(o + 8), w(o + 12), w(o + 16), w(o + 20)]);
    dst = formatIp(6, [w(o + 24), w(o + 28), w(o + 32), w(o + 36)]);
  }
  const l4 = p.l4Off;
  const ports = (p.proto === 6 || p.proto === 17 || p.proto === 132 || p.proto === 136) && p.l4CapLen >= 4 && !(p.isFragment && p.fragOffset > 0);
  const sp = ports ? ((d[l4] as number) << 8) | (d[l4 + 1] as number) : -1;
  const dp = ports ? ((d[l4 + 2] as number) << 8) | (d[l4 + 3] as number) : -1;
  const proto =
    p.proto === 6 ? "tcp" : p.proto === 17 ? "udp" : p.proto === 1 ? "icmp" : p.proto === 58 ? "icmpv6" : p.proto === 132 ? "sctp" : `proto ${p.proto}`;
  const at = (a: string, port: number) => (port < 0 ? a : p.family === 6 ? `[${a}]:${port}` : `${a}:${port}`);
  let extra = "";
  if (p.proto === 6 && p.l4Ok) {
    const f = p.tcpFlags;
    extra = " [" + ["FIN", "SYN", "RST", "PSH", "ACK", "URG"].filter((_, k) => f & (1 << k)).join(",") + "]";
  } else if ((p.proto === 1 || p.proto === 58) && p.icmpType >= 0) extra = ` type ${p.icmpType} code ${p.icmpCode}`;
  return `${proto} ${at(src, sp)} > ${at(dst, dp)}${extra}`;
}

/** `ctlab rules compare A B --capture FILE [--json]`. */
export async function rulesCompareCommand(fileA: string, fileB: string, opts: Record<string, unknown>): Promise<number> {
  const capture = opts["capture"];
  if (typeof capture !== "string") throw new CliError('Option "--capture" is required: the capture to replay through both rulesets');
  if (fileA === "-" && fileB === "-") throw new CliError('Rulesets "-" and "-" both read standard input: give one of them a file');
  if (capture === "-") throw new CliError('Option "--capture" needs a file: the capture is read twice, so standard input cannot be used');
  if (checkInput(capture, "capture").size === null)
    throw new CliError(`Option "--capture" needs a regular file: the capture is read twice, so "${capture}" (a pipe or device) cannot be used`);
  const ropts: RulesetFileOptions = {
    ...(typeof opts["ipset"] === "string" ? { ipset: opts["ipset"] } : {}),
    allowUnsupported: opts["allowUnsupported"] === true,
  };
  const a = loadRulesetFile(fileA, ropts);
  const b = loadRulesetFile(fileB, ropts);
  const engine = engineSysctls(opts);
  const host = hostFromOptions(opts, engine.routing);
  const sysctls = engine.conntrack;
  const seed = parseSeed(opts["seed"]) ?? 1;
  const clock = opts["clock"] === "frozen" ? "frozen" : "capture";
  const limit = opts["limit"] !== undefined ? Number(opts["limit"]) : 20;
  if (!Number.isInteger(limit) || limit < 0) throw new CliError(`Invalid --limit "${String(opts["limit"])}": must be a non-negative integer`);

  const oa = newOutcomes();
  const runA = await replay(capture, { sysctls, clock, seed, firewall: { ruleset: a.ruleset, host, seed, onPacket: (i, _v, r) => record(oa, i, r) } });
  const ob = newOutcomes();
  const differing: Array<{ index: number; packet: string }> = [];
  let diffCount = 0;
  let acceptToDrop = 0;
  let dropToAccept = 0;
  const runB = await replay(capture, {
    sysctls,
    clock,
    seed,
    firewall: {
      ruleset: b.ruleset,
      host,
      seed,
      onPacket: (i, v, r) => {
        record(ob, i, r);
        if (i >= oa.count) return;
        if (oa.verdict[i] === ob.verdict[i]) return;
        diffCount++;
        if (oa.verdict[i] === 1) acceptToDrop++;
        else dropToAccept++;
        if (differing.length < limit) differing.push({ index: i, packet: describeCaptured(v) });
      },
    },
  });
  const byIdA = new Map<number, Rule>();
  for (const t of a.ruleset.tables) for (const c of t.chains) for (const r of c.rules) byIdA.set(r.id, r);
  const byIdB = new Map<number, Rule>();
  for (const t of b.ruleset.tables) for (const c of t.chains) for (const r of c.rules) byIdB.set(r.id, r);
  const side = (run: ReplayRun) => {
    const path = run.path as NonNullable<ReplayRun["path"]>;
    const st = path.stats;
    const m = run.summary.memory;
    return {
      conntrack: { ipv4: path.conntrackOn.ipv4, ipv6: path.conntrackOn.ipv6 },
      packets: {
        tracked: st.tracked,
        untracked: st.untracked,
        not_tracked: st.notTracked,
        new: run.summary.packets.new,
        accepted: st.accepted,
        dropped: st.dropped,
      },
      entries: run.summary.entries.total,
      peak_entries: run.summary.peak_entries,
      memory: { kernel_bytes: m.kernel.total_bytes, kernel_peak_bytes: m.kernel_peak.total_bytes, ctlab_bytes: m.ctlab_bytes },
    };
  };
  const result = {
    capture,
    a: a.ruleset.file,
    b: b.ruleset.file,
    packets: oa.count,
    identical: oa.count - diffCount,
    differ: diffCount,
    accepted_to_dropped: acceptToDrop,
    dropped_to_accepted: dropToAccept,
    examples: differing.map((d) => ({
      packet: d.index + 1,
      description: d.packet,
      a: decisionText(a.ruleset, oa, d.index, byIdA),
      b: decisionText(b.ruleset, ob, d.index, byIdB),
    })),
    table: { a: side(runA), b: side(runB) },
    counters: { a: countersToJson(a.ruleset), b: countersToJson(b.ruleset) },
  };
  const err = runA.summary.error ?? runB.summary.error;
  if (opts["json"] === true) {
    process.stdout.write(JSON.stringify(result, null, 2) + "\n");
  } else {
    const n = (x: number) => x.toLocaleString("en-US");
    const out: string[] = [];
    out.push(`Comparing ${a.ruleset.file} (A) and ${b.ruleset.file} (B) on ${capture}: ${n(oa.count)} IP packets`);
    if (diffCount === 0) out.push("Verdicts: identical for every packet");
    else {
      out.push(
        `Verdicts: ${n(oa.count - diffCount)} identical, ${n(diffCount)} differ (${n(acceptToDrop)} accepted by A and dropped by B, ${n(dropToAccept)} dropped by A and accepted by B)`,
      );
      for (const e of result.examples) {
        out.push(`  packet ${e.packet}: ${e.description}`);
        out.push(`    A: ${e.a}`);
        out.push(`    B: ${e.b}`);
      }
      if (diffCount > differing.length) out.push(`  … ${n(diffCount - differing.length)} more (--limit N to show more)`);
    }
    const ta = result.table.a;
    const tb = result.table.b;
    const rows: Array<[string, string, string]> = [
      ["", "A", "B"],
      ["conntrack", fam(ta.conntrack), fam(tb.conntrack)],
      ["packets tracked", n(ta.packets.tracked), n(tb.packets.tracked)],
      ["untracked (NOTRACK)", n(ta.packets.untracked), n(tb.packets.untracked)],
      ["not seen by conntrack", n(ta.packets.not_tracked), n(tb.packets.not_tracked)],
      ["new", n(ta.packets.new), n(tb.packets.new)],
      ["accepted", n(ta.packets.accepted), n(tb.packets.accepted)],
      ["dropped", n(ta.packets.dropped), n(tb.packets.dropped)],
      ["peak entries", n(ta.peak_entries), n(tb.peak_entries)],
      ["entries at the end", n(ta.entries), n(tb.entries)],
      ["kernel memory at the peak", formatBytes(ta.memory.kernel_peak_bytes), formatBytes(tb.memory.kernel_peak_bytes)],
      ["kernel memory at the end", formatBytes(ta.memory.kernel_bytes), formatBytes(tb.memory.kernel_bytes)],
      ["ctlab memory", formatBytes(ta.memory.ctlab_bytes), formatBytes(tb.memory.ctlab_bytes)],
    ];
    const w0 = Math.max(...rows.map((r) => r[0].length));
    const w1 = Math.max(...rows.map((r) => r[1].length));
    const w2 = Math.max(...rows.map((r) => r[2].length));
    out.push("", "Conntrack table");
    for (const r of rows) out.push(`  ${r[0].padEnd(w0)}  ${r[1].padStart(w1)}  ${r[2].padStart(w2)}`);
    process.stdout.write(out.join("\n") + "\n");
  }
  if (err) {
    process.stderr.write(`ctlab: ${err.message}\n`);
    return 2;
  }
  return 0;
}

function fam(c: { ipv4: boolean; ipv6: boolean }): string {
  return c.ipv4 && c.ipv6 ? "IPv4+IPv6" : c.ipv4 ? "IPv4" : c.ipv6 ? "IPv6" : "off";
}
