import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { parseSysctlAssignment, parseSysctlFile, resolveSysctls, SysctlError, SYSCTLS } from "../../src/conntrack/sysctl.js";

// The sysctl parsers read user files and command-line text: whatever they get,
// only SysctlError may escape, and what they accept must resolve.
const names = SYSCTLS.map((s) => s.name);
const key = fc.oneof(
  fc.constantFrom(...names),
  fc.constantFrom(...names).map((n) => `net.netfilter.${n}`),
  fc.constantFrom(...names).map((n) => `net/netfilter/${n}`),
  fc.string({ maxLength: 40 }),
);
const value = fc.oneof(fc.integer({ min: -5, max: 1 << 30 }).map(String), fc.string({ maxLength: 12 }), fc.constantFrom("0x10", "010", " 7 ", "", "-0"));
const line = fc.oneof(
  fc.tuple(fc.constantFrom("", "-", " "), key, fc.constantFrom("=", " = ", "=="), value).map(([p, k, e, v]) => `${p}${k}${e}${v}`),
  fc.constantFrom("# comment", "; comment", "", "   ", "net.ipv4.ip_forward = 1"),
  fc.string({ maxLength: 60 }),
);

function onlySysctlError(f: () => unknown): void {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof SysctlError, `unexpected ${String(e)}`);
    // The message quotes the input, which may itself read "NaN": only text outside quotes must be free of it.
    assert.doesNotMatch((e as Error).message.replace(/"[^"]*"/g, '""'), /undefined|NaN|\[object/);
  }
}

test("parseSysctlFile: only SysctlError escapes, accepted values resolve", () => {
  fc.assert(
    fc.property(fc.array(line, { maxLength: 12 }), (lines) => {
      onlySysctlError(() => {
        const f = parseSysctlFile(lines.join("\n"), "fuzz.conf");
        onlySysctlError(() => resolveSysctls(f.values));
      });
    }),
    { numRuns: 2000 },
  );
});

test("parseSysctlAssignment: only SysctlError escapes", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string({ maxLength: 80 }),
        fc.tuple(key, value).map(([k, v]) => `${k}=${v}`),
      ),
      (text) => {
        onlySysctlError(() => {
          const a = parseSysctlAssignment(text);
          assert.ok(names.includes(a.name));
          assert.ok(Number.isFinite(a.value));
        });
      },
    ),
    { numRuns: 3000 },
  );
});
