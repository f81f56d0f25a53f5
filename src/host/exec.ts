/**
 * External commands for the host collectors: always an argument array (never a
 * shell string), always a timeout, and a missing tool or a refused privilege
 * comes back as a typed outcome naming what would fix it — never a throw, so
 * one missing tool never hides what the others could tell.
 */
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";

/** Which Debian package provides a tool the doctor runs. */
export const PACKAGE_OF: Readonly<Record<string, string>> = {
  conntrack: "conntrack (conntrack-tools)",
  nft: "nftables",
  "iptables-save": "iptables",
  "ip6tables-save": "iptables",
  ip: "iproute2",
  nsenter: "util-linux",
  dmesg: "util-linux",
  journalctl: "systemd",
  grep: "grep",
  cat: "coreutils",
  stat: "coreutils",
};

export type CommandOutcome =
  | { readonly ok: true; readonly stdout: string; readonly stderr: string }
  | {
      readonly ok: false;
      readonly reason: "missing" | "denied" | "failed" | "timeout";
      readonly message: string;
      readonly stdout: string;
      readonly stderr: string;
    };

/** How a command runs: inside another network namespace via nsenter when `netnsPath` is set. */
export interface ExecContext {
  /** A /run/netns/NAME or /proc/PID/ns/net path; undefined = the current namespace. */
  readonly netnsPath?: string;
  readonly timeoutMs?: number;
}

export function argvFor(ctx: ExecContext, cmd: string, args: readonly string[]): [string, string[]] {
  if (ctx.netnsPath === undefined) return [cmd, [...args]];
  return ["nsenter", [`--net=${ctx.netnsPath}`, "--", cmd, ...args]];
}

function classify(
  code: number | null,
  stderr: string,
  spawnErr: NodeJS.ErrnoException | undefined,
  cmd: string,
): { reason: "missing" | "denied" | "failed"; message: string } {
  if (spawnErr?.code === "ENOENT") return { reason: "missing", message: `"${cmd}" is not installed: install the ${PACKAGE_OF[cmd] ?? cmd} package` };
  if (spawnErr?.code === "EACCES") return { reason: "denied", message: `"${cmd}" may not be run: ${spawnErr.message}` };
  const err = stderr.trim().split("\n").slice(-1)[0] ?? "";
  // nsenter reports a missing inner command as exit 127 ("failed to execute").
  if (code === 127 && /No such file|failed to execute/i.test(err))
    return { reason: "missing", message: `"${cmd}" is not installed: install the ${PACKAGE_OF[cmd] ?? cmd} package` };
  if (/Operation not permitted|Permission denied|must be root|are you root/i.test(err)) {
    return { reason: "denied", message: `"${cmd}" was refused: ${err}: run as root (CAP_NET_ADMIN)` };
  }
  return { reason: "failed", message: `"${cmd}" failed with exit ${String(code)}${err ? `: ${err}` : ""}` };
}

/**
 * The one spawner: runs `cmd` bounded in time, keeps the last MiB of stderr, and
 * resolves with the outcome once the process has closed and the caller's reader
 * of stdout (`readStdout`, which calls `ended` when it has read all) is done.
 */
function spawnBounded(
  ctx: ExecContext,
  cmd: string,
  args: readonly string[],
  defaultTimeoutMs: number,
  readStdout: (stdout: Readable, ended: () => void) => void,
  stdoutText: () => string,
): Promise<CommandOutcome> {
  const [file, argv] = argvFor(ctx, cmd, args);
  const timeoutMs = ctx.timeoutMs ?? defaultTimeoutMs;
  return new Promise((resolve) => {
    let stderr = "";
    let spawnErr: NodeJS.ErrnoException | undefined;
    let timedOut = false;
    const child = spawn(file, argv, { stdio: ["ignore", "pipe", "pipe"] });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      if (stderr.length < 1024 * 1024) stderr += d;
    });
    child.on("error", (e) => (spawnErr = e));
    let pending = 2;
    let code: number | null = null;
    const done = (): void => {
      if (--pending > 0) return;
      clearTimeout(timer);
      const stdout = stdoutText();
      if (timedOut) resolve({ ok: false, reason: "timeout", message: `"${cmd}" did not finish within ${timeoutMs / 1000} s`, stdout, stderr });
      else if (spawnErr === undefined && code === 0) resolve({ ok: true, stdout, stderr });
      else resolve({ ok: false, ...classify(code, stderr, spawnErr, file === "nsenter" && spawnErr === undefined ? cmd : file), stdout, stderr });
    };
    readStdout(child.stdout, done);
    child.on("close", (c) => {
      code = c;
      done();
    });
  });
}

/** Runs a command to completion and returns its output (bounded in time and size). */
export function runCommand(ctx: ExecContext, cmd: string, args: readonly string[]): Promise<CommandOutcome> {
  let stdout = "";
  return spawnBounded(
    ctx,
    cmd,
    args,
    30_000,
    (out, ended) => {
      out.setEncoding("utf8").on("data", (d: string) => {
        if (stdout.length < 256 * 1024 * 1024) stdout += d;
      });
      // The process's close comes after its stdout's: nothing more to wait for.
      ended();
    },
    () => stdout,
  );
}

/**
 * Runs a command and hands its standard output to `onLine` line by line as it
 * arrives (a million-entry `conntrack -L` is never held in memory). Resolves
 * when the command ended, with its outcome (stdout left empty).
 */
export function streamCommand(ctx: ExecContext, cmd: string, args: readonly string[], onLine: (line: string) => void): Promise<CommandOutcome> {
  return spawnBounded(
    ctx,
    cmd,
    args,
    120_000,
    (out, ended) => {
      const rl = createInterface({ input: out, crlfDelay: Infinity });
      rl.on("line", onLine);
      rl.on("close", ended);
    },
    () => "",
  );
}
