#!/usr/bin/env node
// Import cycles in src/: every relative import, `import type` and re-exports
// included (a type-only cycle still ties modules together for readers and
// for the next refactor). Prints each cycle as a path and exits 1 when there
// is one.
//
//   node scripts/check-cycles.mjs [dir] [--json]   (default: src; --json prints the cycles, exit 0)
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith(".ts") && !name.endsWith(".d.ts")) out.push(p);
  }
  return out;
}

/** Relative module specifiers of a file: imports, `import type`, `export … from`, dynamic `import("…")`. */
function specifiers(file) {
  const info = ts.preProcessFile(readFileSync(file, "utf8"), true, true);
  return info.importedFiles.map((f) => f.fileName).filter((s) => s.startsWith("."));
}

export function findCycles(dir) {
  const files = walk(dir, []).sort();
  const known = new Set(files);
  const edges = new Map();
  for (const f of files) {
    const out = [];
    for (const s of specifiers(f)) {
      const target = resolve(dirname(f), s.replace(/\.js$/, ".ts"));
      if (known.has(target)) out.push(target);
    }
    edges.set(f, out);
  }
  // Tarjan's strongly connected components; each component of more than one
  // module (or a self-import) holds at least one cycle.
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const comps = [];
  const visit = (v) => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v)) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v), idx.get(w)));
      }
    }
    if (low.get(v) === idx.get(v)) {
      const c = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        c.push(w);
      } while (w !== v);
      if (c.length > 1 || edges.get(v).includes(v)) comps.push(c);
    }
  };
  for (const f of files) if (!idx.has(f)) visit(f);
  // One concrete cycle per component: the shortest way back to its first module.
  return comps.map((c) => {
    const inComp = new Set(c);
    const start = [...c].sort()[0];
    const prev = new Map([[start, null]]);
    const queue = [start];
    let end = null;
    while (queue.length > 0 && end === null) {
      const v = queue.shift();
      for (const w of edges.get(v)) {
        if (!inComp.has(w)) continue;
        if (w === start) {
          end = v;
          break;
        }
        if (!prev.has(w)) {
          prev.set(w, v);
          queue.push(w);
        }
      }
    }
    const path = [];
    for (let v = end; v !== null; v = prev.get(v)) path.unshift(v);
    path.push(start);
    return { modules: c.map((m) => relative(root, m)).sort(), path: path.map((m) => relative(root, m)) };
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const json = args.includes("--json");
  const dir = resolve(root, args.find((a) => !a.startsWith("--")) ?? "src");
  const cycles = findCycles(dir);
  if (json) {
    console.log(JSON.stringify(cycles.map((c) => c.path.join(" → "))));
    process.exit(0);
  }
  for (const c of cycles)
    console.error(
      `Import cycle: ${c.path.join(" → ")}${c.modules.length > c.path.length - 1 ? ` (component of ${c.modules.length} modules: ${c.modules.join(", ")})` : ""}`,
    );
  if (cycles.length > 0) process.exit(1);
  console.log(`No import cycles in ${relative(root, dir) || "."}`);
}
