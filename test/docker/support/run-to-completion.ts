import type { DockerTestEnv } from "./docker-test-env.js";

export interface Completed {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs an image once (labelled as this file's test object), collects its output, removes it. */
export async function runToCompletion(env: DockerTestEnv, image: string, entrypoint?: string[], cmd?: string[], network = "none"): Promise<Completed> {
  const { engine } = env;
  const id = await engine.createContainer({
    name: `hangar-${env.run}-once-${Math.random().toString(16).slice(2, 8)}`,
    image,
    labels: env.labels(),
    ...(entrypoint ? { entrypoint } : {}),
    ...(cmd ? { cmd } : {}),
    endpoint: { network },
    user: "10001:10001",
    capDrop: ["ALL"],
    securityOpt: ["no-new-privileges"],
    readonlyRootfs: true,
  });
  try {
    const io = await engine.attach(id, { stdin: false });
    let stdout = "";
    let stderr = "";
    io.stdout.on("data", (c: Buffer) => (stdout += c.toString("utf8")));
    io.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
    const ended = new Promise((resolve) => io.stdout.on("end", resolve));
    await engine.startContainer(id);
    const exitCode = await engine.waitContainer(id);
    await Promise.race([ended, new Promise((r) => setTimeout(r, 2000))]);
    io.close();
    return { exitCode, stdout, stderr };
  } finally {
    await engine.removeContainer(id);
  }
}
