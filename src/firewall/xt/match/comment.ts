/**
 * libxt_comment.
 */
import { RulesetSyntaxError, textPos } from "../../errors.js";
import type { Match } from "../../model.js";
import type { TextPos } from "../../errors.js";
import type { MatchCall, Tok, XtMatch } from "../types.js";

function build({ ctx, opts, b }: MatchCall): Match[] {
  const pos = (t: Tok): TextPos => textPos(ctx.file, ctx.lineNo, t.col);
  const out: Match[] = [];
  for (const o of opts) {
    if ((o.args[0] as Tok).text.length > 255) throw new RulesetSyntaxError(pos(o.args[0] as Tok), "comment longer than 255 characters");
    b.comment = (o.args[0] as Tok).text;
    out.push({ kind: "comment", text: (o.args[0] as Tok).text });
  }
  return out;
}

/** comment_print: `/* text *\/`. */
function list({ opts }: MatchCall): string {
  return opts.map((o) => ` /* ${(o.args[0] as Tok).text} */`).join("");
}

export const comment: XtMatch = {
  type: "match",
  name: "comment",
  options: { "--comment": 1 },
  build,
  list,
};
