import Dockerode from "dockerode";
import { DockerContainerEngine } from "../../src/docker/docker-container-engine.js";
import { selectorTerms } from "../../src/docker/labels.js";
import { prepareTestImages } from "./support/docker-test-env.js";

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
    const left = [
      ...(await engine.listContainers({ labels })).map((c) => `container ${c.name}`),
      ...(await engine.listNetworks({ labels })).map((n) => `network ${n.name}`),
      ...(await engine.listVolumes({ labels })).map((v) => `volume ${v.name}`),
    ];
    if (left.length > 0) throw new Error(`Hangar-labelled objects left after the suite: ${left.join(", ")}`);
  };
}
