import { SYSCTLS } from "../conntrack/sysctl.js";

/** `ctlab sysctl`: the sysctls ctlab models, as `sysctl -a` would name them. */
export function sysctlCommand(opts: Record<string, unknown>): number {
  if (opts.json === true) {
    process.stdout.write(JSON.stringify(SYSCTLS, null, 2) + "\n");
    return 0;
  }
  const width = Math.max(...SYSCTLS.map((s) => s.name.length));
  const lines = SYSCTLS.map((s) => {
    const unit = s.unit === "seconds" ? " s" : "";
    const ro = s.readOnly && !s.description.includes("read-only") ? " (read-only)" : "";
    return `net.netfilter.${s.name.padEnd(width)}  ${`${s.default}${unit}`.padStart(9)}  ${s.description}${ro}`;
  });
  process.stdout.write(lines.join("\n") + "\n");
  return 0;
}
