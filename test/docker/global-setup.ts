import Dockerode from "dockerode";
import { DockerContainerEngine } from "../../src/docker/docker-container-engine.js";
import { selectorTerms } from "../../src/docker/labels.js";
import { LABEL_TEST_FILE, prepareTestImages } from "./support/docker-test-env.js";

/**
 * Proposed vitest globalSetup for the Docker tests (wire it in vitest.config.ts): builds
 * the test images once before any file starts, instead of the first file's beforeAll
 * doing it while the others wait on the lock; and after the whole suite, fails the run if
 * any container, network or volume with Hangar's labels is left (images are kept: they are
 * content-addressed and reused by the next run).
 */
export default async function setup(): Promise<() => Promise<void>> {
  const engine = new DockerContainerEngine(new Dockerode());
  await engine.ping();
  const started = Date.now();
  const images = await prepareTestImages(engine);
  console.log(`docker test images ready in ${Date.now() - started} ms (sidecar: ${images.sidecarImage}${images.realSidecar ? "" : ", stub"})`);

  return async () => {
    const labels = selectorTerms();
    // Each with the test file that created it, where it carries one (DockerTestEnv's objects do).
    const from = (l: Readonly<Record<string, string>>): string => (l[LABEL_TEST_FILE] !== undefined ? ` (from ${l[LABEL_TEST_FILE]})` : "");
    const left = [
      ...(await engine.listContainers({ labels })).map((c) => `container ${c.name}${from(c.labels)}`),
      ...(await engine.listNetworks({ labels })).map((n) => `network ${n.name}${from(n.labels)}`),
      ...(await engine.listVolumes({ labels })).map((v) => `volume ${v.name}${from(v.labels)}`),
    ];
    if (left.length > 0) throw new Error(`Hangar-labelled objects left after the suite: ${left.join(", ")}`);
  };
}
