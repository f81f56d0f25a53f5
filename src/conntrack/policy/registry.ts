/**
 * The table policies by name: typed options for the library, `--policy-opt`
 * parsing for the CLI, one validation for both.
 */
import { KERNEL_OPTIONS, KernelPolicy } from "./kernel.js";
import { POLICY_NAMES, PolicyError, resolveOptions } from "./policy.js";
import type { PolicyName, PolicyOptionSpec, TablePolicy } from "./policy.js";

/** Options of the `kernel` policy (it has none): nf_conntrack's early drop and gc_worker eviction. */
export interface KernelPolicyOptions {
  readonly name: "kernel";
}

/** The table policy of a tracker: a name (default options) or a name with its options. */
export type PolicyConfig = PolicyName | KernelPolicyOptions;

interface PolicyFactory {
  readonly specs: readonly PolicyOptionSpec[];
  make(options: Readonly<Record<string, number | string>>, capacity: number): TablePolicy;
}

const FACTORIES: Readonly<Record<PolicyName, PolicyFactory>> = {
  kernel: { specs: KERNEL_OPTIONS, make: (_o, capacity) => new KernelPolicy(capacity) },
};

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
export function createPolicy(config: PolicyConfig | undefined, capacity: number): TablePolicy {
  const name: unknown = config === undefined ? "kernel" : typeof config === "string" ? config : (config as { name?: unknown }).name;
  if (!isPolicyName(name)) throw unknownName(name);
  const given = typeof config === "object" ? (config as unknown as Record<string, unknown>) : {};
  const f = FACTORIES[name];
  return f.make(resolveOptions(name, f.specs, given), capacity);
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
  const resolved = resolveOptions(name, policyOptionSpecs(name), given);
  const config: Record<string, number | string> = { name, ...resolved };
  return config as unknown as PolicyConfig;
}

/** Checks every `--policy-opt` against every policy it names (even one not run): typos fail loudly. */
export function checkPolicyOptions(opts: readonly string[]): void {
  for (const n of POLICY_NAMES) policyFromCli(n, opts);
}
