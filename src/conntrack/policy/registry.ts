/**
 * The table policies by name: typed options for the library, `--policy-opt`
 * parsing for the CLI, one validation for both.
 */
import { KERNEL_OPTIONS, KernelPolicy } from "./kernel.js";
import { ADAPTIVE_OPTIONS, AdaptivePolicy } from "./adaptive.js";
import { EMERGENCY_OPTIONS, EmergencyPolicy } from "./emergency.js";
import { RECYCLE_OPTIONS, RecycleHalfOpenPolicy } from "./recycle-half-open.js";
import { QUOTA_OPTIONS, QuotaPolicy } from "./quota.js";
import { CTLAB_OPTIONS, CtlabPolicy } from "./ctlab.js";
import type { Table } from "../table.js";
import { POLICY_NAMES, PolicyError, resolveOptions } from "./policy.js";
import type { PolicyName, PolicyOptionSpec, TablePolicy } from "./policy.js";

/** Options of the `kernel` policy (it has none): nf_conntrack's early drop and gc_worker eviction. */
export interface KernelPolicyOptions {
  readonly name: "kernel";
}

/** Options of the `adaptive` policy (pf adaptive timeouts); fractions of nf_conntrack_max. */
export interface AdaptivePolicyOptions {
  readonly name: "adaptive";
  /** Occupancy where timeouts start to shrink (default 0.6). */
  readonly start?: number;
  /** Occupancy where they reach zero (default 1.2). */
  readonly end?: number;
}

/** Options of the `emergency` policy (Suricata emergency mode); timeouts in seconds. */
export interface EmergencyPolicyOptions {
  readonly name: "emergency";
  /** Occupancy that starts the mode (default 1: full). */
  readonly enter?: number;
  /** Free fraction that makes a check healthy (default 0.3). */
  readonly recovery?: number;
  /** Consecutive healthy once-a-second checks that end it (default 30). */
  readonly checks?: number;
  readonly tcpNew?: number;
  readonly tcpEstablished?: number;
  readonly tcpClosed?: number;
  readonly otherNew?: number;
  readonly otherEstablished?: number;
}

/** Options of the `recycle-half-open` policy (VPP). */
export interface RecycleHalfOpenPolicyOptions {
  readonly name: "recycle-half-open";
  /** Entries looked at from each timeout class's head (default 64). */
  readonly scan?: number;
}

/** Options of the `quota` policy (pf max-src-states, OVS zone limits). */
export interface QuotaPolicyOptions {
  readonly name: "quota";
  /** What a quota is counted by (default "address"). */
  readonly per?: "address" | "prefix" | "zone";
  /** Entries one source may hold (default 0: nf_conntrack_max / 64, at least 16). */
  readonly max?: number;
  readonly prefix4?: number;
  readonly prefix6?: number;
  /** Occupancy from which quotas apply (default 0: always). */
  readonly start?: number;
}

/** Options of the `ctlab` policy; graces in seconds. */
export interface CtlabPolicyOptions {
  readonly name: "ctlab";
  readonly graceNew?: number;
  readonly graceEstablished?: number;
  readonly graceClosing?: number;
  /** Entries looked at from each timeout class's head (default 4). */
  readonly scan?: number;
  /** Fraction of the table above which a source may not evict a smaller source's entries (default 0.1). */
  readonly share?: number;
  readonly prefix4?: number;
  readonly prefix6?: number;
}

/** The table policy of a tracker: a name (default options) or a name with its options. */
export type PolicyConfig =
  PolicyName | KernelPolicyOptions | AdaptivePolicyOptions | EmergencyPolicyOptions | RecycleHalfOpenPolicyOptions | QuotaPolicyOptions | CtlabPolicyOptions;

type Resolved = Readonly<Record<string, number | string>>;

interface PolicyFactory {
  readonly specs: readonly PolicyOptionSpec[];
  make(options: Resolved, capacity: number, table: Table): TablePolicy;
  /** A check across options: the message of what is wrong, or null. */
  check?(options: Resolved): string | null;
}

const FACTORIES: Readonly<Record<PolicyName, PolicyFactory>> = {
  kernel: { specs: KERNEL_OPTIONS, make: (_o, capacity) => new KernelPolicy(capacity) },
  adaptive: { specs: ADAPTIVE_OPTIONS, make: (o, capacity) => new AdaptivePolicy(o, capacity), check: (o) => AdaptivePolicy.check(o) },
  emergency: { specs: EMERGENCY_OPTIONS, make: (o, capacity) => new EmergencyPolicy(o, capacity) },
  "recycle-half-open": { specs: RECYCLE_OPTIONS, make: (o, capacity) => new RecycleHalfOpenPolicy(o, capacity) },
  quota: { specs: QUOTA_OPTIONS, make: (o, capacity, table) => new QuotaPolicy(o, capacity, table) },
  ctlab: { specs: CTLAB_OPTIONS, make: (o, capacity, table) => new CtlabPolicy(o, capacity, table) },
};

/** Resolves and cross-checks the options of a policy. */
function resolved(name: PolicyName, given: Readonly<Record<string, unknown>>): Resolved {
  const f = FACTORIES[name];
  const o = resolveOptions(name, f.specs, given);
  const bad = f.check?.(o) ?? null;
  if (bad !== null) throw new PolicyError(name, `Invalid options of policy "${name}": ${bad}`);
  return o;
}

/** The option specs of a policy. */
export function policyOptionSpecs(name: PolicyName): readonly PolicyOptionSpec[] {
  return FACTORIES[name].specs;
}

function isPolicyName(x: unknown): x is PolicyName {
  return typeof x === "string" && (POLICY_NAMES as readonly string[]).includes(x);
}

function unknownName(name: unknown): PolicyError {
  return new PolicyError("policy", `Unknown table policy "${String(name)}": known are ${POLICY_NAMES.join(", ")}`);
}

/**
 * Builds the policy of a tracker with table size `capacity` (nf_conntrack_max).
 * @throws PolicyError for an unknown name or option, or a value out of range
 */
export function createPolicy(config: PolicyConfig | undefined, capacity: number, table: Table): TablePolicy {
  const name: unknown = config === undefined ? "kernel" : typeof config === "string" ? config : (config as { name?: unknown }).name;
  if (!isPolicyName(name)) throw unknownName(name);
  const given = typeof config === "object" ? (config as unknown as Record<string, unknown>) : {};
  return FACTORIES[name].make(resolved(name, given), capacity, table);
}

/**
 * The policy config of `--policy NAME` with `--policy-opt NAME.KEY=VALUE,…`
 * (options of other policies are ignored, so one list serves several
 * `--policy`); values are validated here.
 * @throws PolicyError naming the option at fault
 */
export function policyFromCli(name: string, opts: readonly string[]): PolicyConfig {
  if (!isPolicyName(name)) throw unknownName(name);
  const given: Record<string, string> = {};
  for (const group of opts) {
    for (const item of group.split(",")) {
      const kv = item.trim();
      if (kv === "") continue;
      const eq = kv.indexOf("=");
      const dot = kv.indexOf(".");
      if (eq <= 0 || dot <= 0 || dot > eq) throw new PolicyError(kv, `Invalid --policy-opt "${kv}": expected POLICY.OPTION=VALUE, e.g. adaptive.start=0.6`);
      const policy = kv.slice(0, dot);
      if (!isPolicyName(policy))
        throw new PolicyError(kv, `Invalid --policy-opt "${kv}": unknown table policy "${policy}" (known are ${POLICY_NAMES.join(", ")})`);
      if (policy !== (name as string)) continue;
      given[kv.slice(dot + 1, eq)] = kv.slice(eq + 1).trim();
    }
  }
  const config: Record<string, number | string> = { name, ...resolved(name, given) };
  return config as unknown as PolicyConfig;
}

/** Checks every `--policy-opt` against every policy it names (even one not run): typos fail loudly. */
export function checkPolicyOptions(opts: readonly string[]): void {
  for (const n of POLICY_NAMES) policyFromCli(n, opts);
}
