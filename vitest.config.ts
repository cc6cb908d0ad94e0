import { defineConfig } from "vitest/config";

// Two projects: everything on loopback ("unit"), and the real-Docker suite ("docker"),
// whose global setup builds the images once and fails the run if any Hangar-labelled
// container, network or volume is left behind.
export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    projects: [
      { extends: true, test: { name: "unit", include: ["test/**/*.test.ts"], exclude: ["test/docker/**"] } },
      {
        extends: true,
        test: {
          name: "docker",
          include: ["test/docker/**/*.test.ts"],
          globalSetup: ["test/docker/global-setup.ts"],
          hookTimeout: 600_000,
          testTimeout: 120_000,
        },
      },
    ],
  },
});
