/**
 * One entry point for ruleset files: the format is told by content
 * (iptables-save text, nft JSON, nft text), then the matching parser runs.
 */
import { RulesetSyntaxError, q, textPos } from "./errors.js";
import { parseIptables } from "./iptables.js";
import type { IpSet, Ruleset } from "./model.js";
import { parseNftJson } from "./nft.js";

/** Ruleset file formats ctlab reads. */
export type RulesetFormat = "iptables" | "nft-json" | "nft-text";

const NFT_TEXT_START = /^(?:#!|table\s|flush\s|define\s|include\s|add\s|create\s|insert\s|delete\s|destroy\s|list\s)/;

/**
 * Tells the format of a ruleset from its first significant line.
 * @throws {RulesetSyntaxError} when no known format fits.
 */
export function detectFormat(text: string, file = "<stdin>"): RulesetFormat {
  const t = text.replace(/^\uFEFF/, "");
  const lines = t.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i] as string;
    const line = raw.trim();
    if (line === "") continue;
    if (line.startsWith("#!")) return "nft-text";
    if (line.startsWith("#")) continue;
    if (line.startsWith("{") || (line.startsWith("[") && !/^\[[0-9]+:[0-9]+\]/.test(line))) return "nft-json";
    if (/^(?:\*[a-z]+$|:\S+|\[[0-9]+:[0-9]+\]|-[AINPFX]\s|COMMIT$)/.test(line)) return "iptables";
    if (NFT_TEXT_START.test(line)) return "nft-text";
    throw new RulesetSyntaxError(
      textPos(file, i + 1, raw.length - raw.trimStart().length + 1),
      "unrecognised ruleset format: expected iptables-save output, nft JSON or nft text",
    );
  }
  // Only comments: an empty iptables ruleset.
  return "iptables";
}

/**
 * Turns nft text into `nft -j list ruleset` JSON. The firewall part does no
 * I/O: ctlab's own is `convertNftText` (src/host/nft-text.ts), which runs the
 * real nft in a scratch network namespace.
 */
export type NftTextConverter = (text: string, file: string) => string;

/** Options for {@link loadRuleset}. */
export interface LoadOptions {
  /** File name used in positions. */
  readonly file?: string;
  /** Force a format instead of detecting it. */
  readonly format?: RulesetFormat;
  /** Keep rules using unsupported features as never-matching. */
  readonly allowUnsupported?: boolean;
  /** iptables family override (`ip` / `ip6`). */
  readonly family?: "ip" | "ip6";
  /** ipset sets for `-m set` (from parseIpsetSave). */
  readonly ipsets?: Map<string, IpSet>;
  /** Reads nft text (without one, nft text is refused with a message asking for JSON). */
  readonly nftText?: NftTextConverter;
}

/**
 * Reads a ruleset in any supported format. nft text goes through
 * `opts.nftText` (e.g. convertNftText, which needs the real `nft` and root);
 * positions then refer to nft's JSON listing.
 * @throws {RulesetSyntaxError} for every problem with the input.
 */
export function loadRuleset(text: string, opts: LoadOptions = {}): Ruleset {
  const file = opts.file ?? "<stdin>";
  const format = opts.format ?? detectFormat(text, file);
  const allowUnsupported = opts.allowUnsupported === true;
  switch (format) {
    case "iptables":
      return parseIptables(text, {
        file,
        allowUnsupported,
        ...(opts.family ? { family: opts.family } : {}),
        ...(opts.ipsets ? { ipsets: opts.ipsets } : {}),
      });
    case "nft-json":
      return parseNftJson(text, { file, allowUnsupported });
    case "nft-text": {
      if (!opts.nftText) {
        throw new RulesetSyntaxError(
          textPos(file, 1, 1),
          `nft text needs a converter to JSON (convertNftText runs the real nft): pass the output of ${q("nft -j list ruleset")} instead`,
          "nft text",
        );
      }
      const json = opts.nftText(text, file);
      return parseNftJson(json, { file: `${file} (as nft -j list ruleset)`, allowUnsupported });
    }
  }
}
