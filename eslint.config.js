// ESLint (flat config): typescript-eslint's strict type-checked rules over
// src/ and test/, with the project's conventions. Import cycles are checked
// by scripts/check-cycles.mjs (test/cycles.test.ts), type imports included.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/**", "dist-bench/**", "node_modules/**", "bench/**", "api/**", "tsconfig*.json"] },
  // A disable comment that no longer silences anything is itself an error: reasons must stay true.
  { linterOptions: { reportUnusedDisableDirectives: "error" } },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    files: ["src/**/*.ts", "test/**/*.ts"],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // One style for narrowing an indexed read under noUncheckedIndexedAccess: the explicit
      // cast (`a[i] as number`), as in the hot paths; `a[i]!` is refused.
      "@typescript-eslint/no-non-null-assertion": "error",
      "@typescript-eslint/consistent-type-imports": ["error", { prefer: "type-imports", fixStyle: "separate-type-imports" }],
      "@typescript-eslint/consistent-type-exports": "error",
      "@typescript-eslint/prefer-readonly": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" }],
      // Numbers in template literals are the norm here (conntrack lines are built from them).
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true, allowBoolean: true }],
      // Bit tests on typed-array reads (`status & IPS.ASSURED`) are conditions by design.
      "@typescript-eslint/no-unnecessary-condition": ["error", { allowConstantLoopConditions: true }],
      "no-constant-condition": ["error", { checkLoops: false }],
      "no-labels": "off",
      eqeqeq: ["error", "always"],
      "prefer-const": "error",
      "no-var": "error",
      "@typescript-eslint/no-confusing-void-expression": ["error", { ignoreArrowShorthand: true }],
    },
  },
  {
    // node:test's describe/it return promises the runner awaits; `a[i]!` reads stay allowed in tests.
    files: ["test/**/*.ts"],
    rules: {
      "@typescript-eslint/no-floating-promises": "off",
      "@typescript-eslint/no-non-null-assertion": "off",
    },
  },
  {
    files: ["**/*.mjs", "**/*.js"],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { globals: { process: "readonly", console: "readonly" } },
  },
);
