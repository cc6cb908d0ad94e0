import { join } from "node:path";
import { compileAddon, UDP_BATCH_ADDON } from "../../../src/images/native-addon.js";
import { hangarPackageRoot } from "../../../src/images/package-root.js";

/** Where the "dns-batched" project's setup compiles the batched UDP addon, for startHarness. */
export const TEST_UDP_BATCH_ADDON = join(hangarPackageRoot(), ".stage/test-addons/udp-batch.node");

/**
 * globalSetup of the "dns-batched" project (vitest.config.ts): the DNS server's tests run again
 * over the batched native socket the sidecar image ships, compiled here with the host's C
 * compiler as the image builder does. No compiler: the project fails, it never skips.
 */
export default async function setup(): Promise<void> {
  await compileAddon(hangarPackageRoot(), UDP_BATCH_ADDON, TEST_UDP_BATCH_ADDON);
}
