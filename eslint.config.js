import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/**", "dist-check/**", "node_modules/**", "policies/schema.json", ".stage/**", ".scratch/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-console": "error",
    },
  },
  { files: ["src/cli/**", "bench/**", "test/**", "images/**", "scripts/**"], rules: { "no-console": "off" } },
  // The pure core must never reach for I/O, nor import anything outside src/core.
  ...[
    ["src/core/*.ts", "../*"],
    ["src/core/*/*.ts", "../../*"],
    ["src/core/*/*/*.ts", "../../../*"],
  ].map(([files, escape]) => ({
    files: [files],
    rules: {
      "no-restricted-imports": ["error", {
        patterns: [
          { group: ["node:fs*", "node:net", "node:dgram", "node:tls", "node:http*", "node:child_process", "better-sqlite3", "dockerode", "pino"], message: "src/core is pure: no I/O imports." },
          { group: [escape], message: "src/core must not import adapters (anything outside src/core)." },
        ],
      }],
    },
  })),
);
