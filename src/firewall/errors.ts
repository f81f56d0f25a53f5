/**
 * The one error a ruleset parser may throw. Everything else escaping a parser
 * is a bug (the fuzz tests hold the parsers to that).
 *
 * Text input carries line and column (1-based); JSON input carries the path
 * of the offending value (`$.nftables[12].rule.expr[3].match.right`).
 * `feature` names what could not be handled, so that a caller can group or
 * skip errors ("-m string", "xt match conntrack", "queue", …).
 */
export class RulesetSyntaxError extends SyntaxError {
  override readonly name = "RulesetSyntaxError";
  /** File name as given by the caller ("<stdin>" when there is none). */
  readonly file: string;
  /** 1-based line, or 0 for JSON input. */
  readonly line: number;
  /** 1-based column, or 0 for JSON input. */
  readonly column: number;
  /** JSON path of the offending value, or "" for text input. */
  readonly jsonPath: string;
  /** The construct that failed: an option, match, target, statement, or "syntax". */
  readonly feature: string;
  /** Message without the position prefix. */
  readonly detail: string;
  /**
   * True when the input is well-formed but uses a feature ctlab does not model;
   * parsers called with `allowUnsupported` then keep the rule as never-matching.
   */
  readonly unsupported: boolean;

  constructor(pos: SourcePos, detail: string, feature = "syntax", unsupported = false) {
    super(`${formatPos(pos)}: ${detail}`);
    this.file = pos.file;
    this.line = pos.kind === "text" ? pos.line : 0;
    this.column = pos.kind === "text" ? pos.column : 0;
    this.jsonPath = pos.kind === "json" ? pos.path : "";
    this.feature = feature;
    this.detail = detail;
    this.unsupported = unsupported;
  }
}

/** Where something came from in a ruleset file. */
export type SourcePos = TextPos | JsonPos;

/** A position in a text file (iptables-save, nft text). Line and column are 1-based. */
export interface TextPos {
  readonly kind: "text";
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

/** A position in a JSON document, as a JSONPath (`$.nftables[3].rule.expr[0]`). */
export interface JsonPos {
  readonly kind: "json";
  readonly file: string;
  readonly path: string;
}

/** Creates a text position. */
export function textPos(file: string, line: number, column: number): TextPos {
  return { kind: "text", file, line, column };
}

/** Creates a JSON position. */
export function jsonPos(file: string, path: string): JsonPos {
  return { kind: "json", file, path };
}

/** `file:line:column` or `file:$.path`, the prefix of every ruleset message. */
export function formatPos(pos: SourcePos): string {
  return pos.kind === "text" ? `${pos.file}:${pos.line}:${pos.column}` : `${pos.file}:${pos.path}`;
}

/** Quotes a value for a message: `"value"`, with control characters escaped and long values cut. */
export function q(value: string): string {
  const cut = value.length > 60 ? value.slice(0, 57) + "..." : value;
  return JSON.stringify(cut);
}

/** The hint appended to every unsupported-feature message. */
export const SKIP_HINT = "use --allow-unsupported to skip such rules";
