#!/usr/bin/env node
// One-off codemod for ESLint's no-non-null-assertion: rewrites an indexed
// read narrowed with `!` (`a[i]!`) into the project's one style, the explicit
// cast (`(a[i] as number)`), the type taken from the checker. Other `!` uses
// are listed, not changed. Run Prettier afterwards (it drops needless parens).
//
//   node scripts/codemod-index-cast.mjs [--dry] [path-prefix...]
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const dry = args.includes("--dry");
const prefixes = args.filter((a) => !a.startsWith("--")).map((p) => resolve(root, p));

const cfg = ts.readConfigFile(join(root, "tsconfig.json"), ts.sys.readFile);
const parsed = ts.parseJsonConfigFileContent(cfg.config, ts.sys, root);
const program = ts.createProgram(parsed.fileNames, { ...parsed.options, noEmit: true });
const checker = program.getTypeChecker();
let changed = 0;

/** Whether `x as T` in the place of `node` needs parentheses (kept only where precedence asks). */
function needsParens(node) {
  const p = node.parent;
  if (ts.isParenthesizedExpression(p) || ts.isReturnStatement(p) || ts.isExpressionStatement(p) || ts.isTemplateSpan(p)) return false;
  if (ts.isVariableDeclaration(p) || ts.isPropertyAssignment(p) || ts.isArrayLiteralExpression(p) || ts.isSpreadElement(p)) return false;
  if ((ts.isCallExpression(p) || ts.isNewExpression(p)) && p.arguments?.includes(node)) return false;
  if (ts.isElementAccessExpression(p) && p.argumentExpression === node) return false;
  if (
    ts.isBinaryExpression(p) &&
    p.right === node &&
    p.operatorToken.kind >= ts.SyntaxKind.FirstAssignment &&
    p.operatorToken.kind <= ts.SyntaxKind.LastAssignment
  )
    return false;
  return true;
}
const left = [];

for (const sf of program.getSourceFiles()) {
  const file = sf.fileName;
  if (file.includes("node_modules") || !file.startsWith(root)) continue;
  if (prefixes.length > 0 && !prefixes.some((p) => file.startsWith(p))) continue;
  const edits = [];
  const visit = (node) => {
    if (ts.isNonNullExpression(node)) {
      const inner = node.expression;
      const t = checker.getNonNullableType(checker.getTypeAtLocation(inner));
      const text = checker.typeToString(t, inner, ts.TypeFormatFlags.NoTruncation);
      if (ts.isElementAccessExpression(inner) && !text.includes("import(") && !text.includes("=>")) {
        const cast = `${inner.getText(sf)} as ${text}`;
        edits.push({ start: node.getStart(sf), end: node.getEnd(), text: needsParens(node) ? `(${cast})` : cast });
        return; // nested `!` inside are rewritten on the next run
      }
      const { line } = sf.getLineAndCharacterOfPosition(node.getStart(sf));
      left.push(`${relative(root, file)}:${line + 1}: ${node.getText(sf).slice(0, 60)}`);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  if (edits.length === 0) continue;
  let src = readFileSync(file, "utf8");
  for (const e of edits.sort((a, b) => b.start - a.start)) src = src.slice(0, e.start) + e.text + src.slice(e.end);
  changed += edits.length;
  if (!dry) writeFileSync(file, src);
  console.log(`${relative(root, file)}: ${edits.length}`);
}
console.log(`${changed} indexed reads ${dry ? "would be" : ""} rewritten; ${left.length} other non-null assertions left:`);
for (const l of left) console.log(`  ${l}`);
