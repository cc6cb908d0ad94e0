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
  { files: ["src/cli/**", "bench/**", "test/**", "images/**"], rules: { "no-console": "off" } },
  // The pure core must never reach for I/O or adapters.
  {
    files: ["src/core/**"],
    rules: {
      "no-restricted-imports": ["error", {
        patterns: [
          { group: ["node:fs*", "node:net", "node:dgram", "node:tls", "node:http*", "node:child_process", "better-sqlite3", "dockerode", "pino"], message: "src/core is pure: no I/O imports." },
          { group: ["../sidecar/**", "../cli/**", "../policy/**", "../docker/**", "../runtime/**"], message: "src/core must not import adapters." },
        ],
      }],
    },
  },
);
