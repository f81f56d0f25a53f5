/**
 * `ctlab doctor` and `ctlab collect`: read a host's (or a snapshot folder's)
 * connection tracking and explain it. Read-only: never writes a sysctl, never
 * deletes an entry.
 */
import type { DoctorReport } from "../host/diagnose.js";
import { diagnose } from "../host/diagnose.js";
import type { NetnsTarget, Snapshot } from "../host/snapshot.js";
import { allNetns, currentNetns, DirSink, dirSource, HostError, liveSource, namedNetns, snapshotFolders, takeSnapshot } from "../host/snapshot.js";
import { formatDoctorText } from "../report/doctor.js";
import { CliError } from "./errors.js";
import { optionText } from "./options.js";

function intOpt(v: unknown, name: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new CliError(`Bad ${name} "${optionText(v)}": a whole number of at least ${min}`);
  return n;
}

/** The namespaces the options name (current by default). */
export function targetsOf(opts: Record<string, unknown>): NetnsTarget[] {
  try {
    if (opts["allNetns"] === true) {
      if (opts["netns"] !== undefined) throw new CliError("Use --netns or --all-netns, not both");
      return allNetns();
    }
    if (typeof opts["netns"] === "string") return [namedNetns(opts["netns"])];
    return [currentNetns()];
  } catch (e) {
    if (e instanceof HostError) throw new CliError(e.message, 2);
    throw e;
  }
}

function label(t: NetnsTarget): string {
  return t.label === "" ? "current" : t.label;
}

export async function snapshotsOf(opts: Record<string, unknown>): Promise<Snapshot[]> {
  const orphan = intOpt(opts["orphanIdle"], "--orphan-idle", 1);
  const interval = intOpt(opts["interval"], "--interval", 1);
  const sOpts = { ...(orphan !== undefined ? { orphanIdleSeconds: orphan } : {}), ...(interval !== undefined ? { intervalSeconds: interval } : {}) };
  if (typeof opts["from"] === "string") {
    if (opts["netns"] !== undefined || opts["allNetns"] === true) throw new CliError("--from reads a collected folder: --netns and --all-netns do not apply");
    try {
      const out: Snapshot[] = [];
      for (const d of snapshotFolders(opts["from"])) out.push(await takeSnapshot(dirSource(d), sOpts));
      return out;
    } catch (e) {
      if (e instanceof HostError) throw new CliError(e.message, 2);
      throw e;
    }
  }
  const targets = targetsOf(opts);
  // Two samples per namespace would multiply the wait: take them side by side.
  return Promise.all(targets.map((t) => takeSnapshot(liveSource(t), sOpts)));
}

export async function doctorCommand(opts: Record<string, unknown>): Promise<number> {
  const top = intOpt(opts["top"], "--top", 1);
  const snaps = await snapshotsOf(opts);
  const reports: DoctorReport[] = snaps.map((s) => diagnose(s, { ...(top !== undefined ? { top } : {}) }));
  if (opts["json"] === true) {
    const all = opts["allNetns"] === true || reports.length > 1;
    process.stdout.write(JSON.stringify(all ? reports : reports[0], null, 2) + "\n");
  } else {
    process.stdout.write(reports.map(formatDoctorText).join("\n" + "=".repeat(78) + "\n\n"));
  }
  // Exit 0 however ill the table: the doctor reports, it is not a check.
  return 0;
}

export async function collectCommand(dir: string, opts: Record<string, unknown>): Promise<number> {
  const interval = intOpt(opts["interval"], "--interval", 1);
  const targets = targetsOf(opts);
  const many = opts["allNetns"] === true;
  const used = new Set<string>();
  for (const t of targets) {
    let sub = dir;
    if (many) {
      let name = label(t)
        .replace(/[^A-Za-z0-9_.-]+/g, "_")
        .replace(/^_+|_+$/g, "");
      while (used.has(name)) name += "_";
      used.add(name);
      sub = `${dir}/${name}`;
    }
    let sink: DirSink;
    try {
      sink = new DirSink(sub);
    } catch (e) {
      if (e instanceof HostError) throw new CliError(e.message, 2);
      throw e;
    }
    const snap = await takeSnapshot(liveSource(t), { sink, ...(interval !== undefined ? { intervalSeconds: interval } : {}) });
    sink.text("problems.json", JSON.stringify(snap.problems, null, 2) + "\n");
    process.stderr.write(
      `ctlab: ${label(t)}: ${sink.written.length} files in "${sub}"${snap.problems.length ? `; not read: ${snap.problems.map((p) => p.source).join(", ")}` : ""}\n`,
    );
  }
  return 0;
}
