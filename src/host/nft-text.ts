/**
 * nft text → `nft -j list ruleset` JSON, by the real `nft` in a scratch
 * network namespace: the only faithful reader of nft's language (includes,
 * variables, defines, every expression) is nft itself. This is host I/O; the
 * firewall part only parses the JSON.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { RulesetSyntaxError, q, textPos } from "../firewall/errors.js";
import { EnvironmentError } from "./environment.js";

/** Options for {@link convertNftText}. */
export interface NftConvertOptions {
  /** File name for messages; when it names an existing file, nft reads it directly (so includes resolve). */
  readonly file?: string;
  /** nft binary. Default "nft". */
  readonly nft?: string;
  /** ip binary. Default "ip". */
  readonly ip?: string;
  /** Per-command timeout. Default 20000 ms. */
  readonly timeoutMs?: number;
}

let nsCounter = 0;

/**
 * Converts an nft text ruleset to `nft -j list ruleset` JSON by loading it with
 * the real nft into a scratch network namespace (`ctlab-nftconv-<pid>-<n>`,
 * always deleted afterwards). nft's own error (with line:column) becomes a
 * RulesetSyntaxError at that position.
 * @throws {RulesetSyntaxError} when nft rejects the ruleset (at nft's line:column).
 * @throws {EnvironmentError} when nft is missing, ctlab is not root, or no
 *   scratch namespace can be made: the message asks for JSON instead.
 */
export function convertNftText(text: string, opts: NftConvertOptions = {}): string {
  const file = opts.file ?? "<stdin>";
  const nft = opts.nft ?? "nft";
  const ip = opts.ip ?? "ip";
  const timeout = opts.timeoutMs ?? 20000;
  const askJson = `pass the output of ${q("nft -j list ruleset")} instead`;
  const probe = spawnSync(nft, ["--version"], { encoding: "utf8", timeout });
  if (probe.error || probe.status !== 0) {
    throw new EnvironmentError("tool", `Cannot read nft text ${q(file)} without the ${q("nft")} tool (${q(nft)} did not run): ${askJson}`);
  }
  if (typeof process.getuid === "function" && process.getuid() !== 0) {
    throw new EnvironmentError("root", `Cannot read nft text ${q(file)}: loading it into a scratch network namespace needs root: ${askJson}`);
  }
  const ns = `ctlab-nftconv-${process.pid}-${nsCounter++}`;
  let tmp: string | null = null;
  const add = spawnSync(ip, ["netns", "add", ns], { encoding: "utf8", timeout });
  if (add.error || add.status !== 0) {
    throw new EnvironmentError(
      "namespace",
      `Cannot read nft text ${q(file)}: no scratch network namespace (${(add.stderr || String(add.error)).trim()}): ${askJson}`,
    );
  }
  try {
    let path: string;
    let includeDir: string;
    const onDisk = file !== "<stdin>" && fileHasText(file, text);
    if (onDisk) {
      path = resolve(file);
      includeDir = dirname(path);
    } else {
      tmp = mkdtempSync(join(tmpdir(), "ctlab-nft-"));
      path = join(tmp, "ruleset.nft");
      writeFileSync(path, text);
      includeDir = process.cwd();
    }
    const load = spawnSync(ip, ["netns", "exec", ns, nft, "-I", includeDir, "-f", path], { encoding: "utf8", timeout, cwd: includeDir });
    if (load.error || load.status !== 0) {
      const stderr = load.stderr || String(load.error ?? "");
      const m = /^(.*?):([0-9]+):([0-9]+)(?:-[0-9]+)?: Error: (.*)$/m.exec(stderr);
      if (m) throw new RulesetSyntaxError(textPos(file, Number(m[2]), Number(m[3])), `nft rejected the ruleset: ${(m[4] as string).trim()}`, "nft");
      const first = stderr.split("\n").find((l) => l.trim() !== "") ?? "unknown error";
      throw new RulesetSyntaxError(textPos(file, 1, 1), `nft rejected the ruleset: ${first.replace(/^Error: /, "").trim()}`, "nft");
    }
    const list = spawnSync(ip, ["netns", "exec", ns, nft, "-j", "list", "ruleset"], { encoding: "utf8", timeout, maxBuffer: 256 * 1024 * 1024 });
    if (list.error || list.status !== 0) {
      throw new RulesetSyntaxError(textPos(file, 1, 1), `nft could not list the loaded ruleset: ${(list.stderr || String(list.error)).trim()}`, "nft");
    }
    return list.stdout;
  } finally {
    spawnSync(ip, ["netns", "del", ns], { timeout });
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }
}

/** Whether `file` on disk holds exactly `text` (then nft reads it in place, so relative includes work). */
function fileHasText(file: string, text: string): boolean {
  try {
    return readFileSync(file, "utf8") === text;
  } catch {
    return false;
  }
}
