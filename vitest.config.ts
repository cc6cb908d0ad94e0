import { defineConfig } from "vitest/config";

// Three projects: everything on loopback ("unit"), the DNS server's tests over the batched
// UDP socket ("dns-batched"), and the real-Docker suite ("docker"),
// whose global setup builds the images once and fails the run if any Hangar-labelled
// container, network or volume is left behind.
export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    projects: [
      { extends: true, test: { name: "unit", include: ["test/**/*.test.ts"], exclude: ["test/docker/**"] } },
      // The DNS server's tests again, over the batched native UDP socket the sidecar image ships.
      {
        extends: true,
        test: {
          name: "dns-batched",
          include: ["test/sidecar/dns/**/*.test.ts"],
          globalSetup: ["test/sidecar/dns/batched-udp-setup.ts"],
          env: { HANGAR_TEST_DNS_UDP: "batched" },
        },
      },
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
