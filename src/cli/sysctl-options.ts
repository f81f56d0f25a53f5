/**
 * `--sysctl` and `--sysctl-file` values, for every command that runs the
 * engine (apart from options.ts so that declaring the options does not load
 * the sysctl registry).
 */
import { checkRoutingSysctl, HostSpecError, isRoutingSysctl } from "../firewall/host.js";
import { parseSysctlAssignment, parseSysctlFile, resolveSysctls, SysctlError } from "../conntrack/sysctl.js";
import { CliError } from "./errors.js";
import { readInputText } from "./options.js";

/** Options shared by the commands that run the engine. */
export interface EngineOptions {
  sysctl?: string[];
  sysctlFile?: string[];
}

/** Where notes and warnings about options go (stderr in the CLI; a list in tests). */
export type Notify = (line: string) => void;

const toStderr: Notify = (line) => {
  process.stderr.write(`ctlab: ${line}\n`);
};

/** The sysctls of the command line, split by who models them. */
export interface EngineSysctls {
  /** nf_conntrack_* values for the tracker. */
  readonly conntrack: Record<string, number>;
  /**
   * Routing sysctls read from `--sysctl-file` (net.ipv4.conf.*.rp_filter, …)
   * for the host model; `--sysctl` ones are read by hostFromOptions, which
   * applies them over these.
   */
  readonly routing: Record<string, number>;
}

/** The routing sysctls the host model knows (other net.ipv4.conf.* keys of `sysctl -a` output are not its business). */
const MODELLED_ROUTING =
  /^net\.ipv4\.conf\.[A-Za-z0-9_.:@-]{1,15}\.(rp_filter|accept_local|route_localnet|send_redirects)$|^net\.ipv4\.ip_forward$|^net\.ipv6\.conf\.all\.forwarding$/;

/**
 * The routing sysctls of a sysctl.conf-style text, as the host model takes
 * them: keys with slashes or a /proc/sys/ prefix normalised, values checked
 * (a wrong value is an error with file and line, as for conntrack sysctls).
 */
function routingSysctlsOf(text: string, fileName: string): Record<string, number> {
  const out: Record<string, number> = {};
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    let body = (lines[i] as string).trim();
    const tolerant = body.startsWith("-");
    if (tolerant) body = body.slice(1).trim();
    const eq = body.indexOf("=");
    if (eq < 0 || body.startsWith("#") || body.startsWith(";")) continue;
    let key = body.slice(0, eq).trim();
    if (key.startsWith("/proc/sys/")) key = key.slice("/proc/sys/".length);
    // sysctl.conf allows "/" as the separator; interface names never hold one there.
    if (key.includes("/")) key = key.replace(/\//g, ".");
    if (!MODELLED_ROUTING.test(key)) continue;
    const valueText = body.slice(eq + 1).trim();
    const value = /^[0-9]+$/.test(valueText) ? Number(valueText) : Number.NaN;
    try {
      checkRoutingSysctl(key, value);
    } catch (e) {
      if (tolerant) continue;
      if (e instanceof HostSpecError) throw new CliError(`Invalid sysctl file ${fileName}:${i + 1}: ${e.message}`, 1);
      throw e;
    }
    out[key] = value;
  }
  return out;
}

/**
 * Collects `--sysctl-file` then `--sysctl` settings (the command line wins),
 * validated up front so that a typo fails before any packet is read. A file
 * may be `sysctl -a | grep conntrack` output: the read-only
 * nf_conntrack_count is skipped with one note, sysctls ctlab does not model
 * (another kernel's, e.g. DCCP's) with a warning each. Each file is read
 * once (it may be standard input): its routing sysctls are returned beside
 * the conntrack ones, for the host model.
 */
export function engineSysctls(opts: EngineOptions, notify: Notify = toStderr): EngineSysctls {
  const out: Record<string, number> = {};
  const routing: Record<string, number> = {};
  // Routing sysctls (net.ipv4.conf.*.rp_filter, …) describe the host: hostFromOptions reads them.
  opts = { ...opts, sysctl: (opts.sysctl ?? []).filter((a) => !isRoutingSysctl(a.slice(0, Math.max(0, a.indexOf("="))).trim())) };
  try {
    for (const file of opts.sysctlFile ?? []) {
      const text = readInputText(file, "sysctl file");
      const shown = file === "-" ? "<stdin>" : file;
      const parsed = parseSysctlFile(text, shown);
      Object.assign(out, parsed.values);
      Object.assign(routing, routingSysctlsOf(text, shown));
      const readOnly = parsed.ignored.filter((i) => i.kind === "read-only");
      if (readOnly.length > 0) notify(`note: ${file}: ignored read-only ${readOnly.map((i) => `"${i.key}"`).join(", ")} (state, not a setting)`);
      for (const i of parsed.ignored) {
        if (i.kind === "unknown") notify(`warning: ${file}:${i.line}: ignored "${i.key}": ${i.reason}`);
      }
    }
    for (const a of opts.sysctl ?? []) {
      const { name, value } = parseSysctlAssignment(a);
      out[name] = value;
    }
    resolveSysctls(out);
  } catch (e) {
    if (e instanceof SysctlError) throw new CliError(e.message, 1);
    throw e;
  }
  return { conntrack: out, routing };
}
