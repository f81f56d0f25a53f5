#!/usr/bin/env node
import { setFlagsFromString } from "node:v8";

// The per-packet call chain (decode → lookup → TCP window check → confirm)
// is larger than V8's default inlining budget (920 bytes of bytecode per
// optimised function); with 3000 it is inlined whole and established
// traffic replays ~25 % faster (`npm run bench` prints both). The flag must
// be set before the engine's modules are compiled, hence the dynamic import.
setFlagsFromString("--max-inlined-bytecode-size-cumulative=3000");
const { main } = await import("./main.js");

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`ctlab: internal error (a bug; please report it with this trace):\n${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 70;
  },
);
