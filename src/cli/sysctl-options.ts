/**
 * `--sysctl` and `--sysctl-file` values, for every command that runs the
 * engine (apart from options.ts so that declaring the options does not load
 * the sysctl registry).
 */
import { isRoutingSysctl } from "../firewall/host.js";
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

/**
 * Collects `--sysctl-file` then `--sysctl` settings (the command line wins),
 * validated up front so that a typo fails before any packet is read. A file
 * may be `sysctl -a | grep conntrack` output: the read-only
 * nf_conntrack_count is skipped with one note, sysctls ctlab does not model
 * (another kernel's, e.g. DCCP's) with a warning each.
 */
export function sysctlsFromOptions(opts: EngineOptions, notify: Notify = toStderr): Record<string, number> {
  const out: Record<string, number> = {};
  // Routing sysctls (net.ipv4.conf.*.rp_filter, …) describe the host: hostFromOptions reads them.
  opts = { ...opts, sysctl: (opts.sysctl ?? []).filter((a) => !isRoutingSysctl(a.slice(0, Math.max(0, a.indexOf("="))).trim())) };
  try {
    for (const file of opts.sysctlFile ?? []) {
      const text = readInputText(file, "sysctl file");
      const parsed = parseSysctlFile(text, file === "-" ? "<stdin>" : file);
      Object.assign(out, parsed.values);
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
  return out;
}
