import { rm } from "node:fs/promises";

/**
 * The owner watchdog's process (see owner-watchdog.ts): `owner-watchdog-main <{"server","run"}>`,
 * started detached by the owner of one sandbox, with a pipe from the owner on stdin. EOF on it
 * means the owner stopped the sandbox or died; either way whatever is left of the run is
 * removed, and the process exits. Until then only Node built-ins are loaded: it costs the
 * owner's start almost nothing, and the Docker client loads when there is work.
 */

const MAX_INPUT_BYTES = 64 * 1024;
const ATTEMPTS = 3;

const target = JSON.parse(process.argv[2] ?? "null") as { server?: unknown; run?: unknown } | null;
if (typeof target?.server !== "string" || typeof target.run !== "string") {
  process.stderr.write("usage: owner-watchdog-main '{\"server\":\"<name>\",\"run\":\"<id>\"}'\n");
  process.exit(2);
}
const run = { server: target.server, run: target.run };
process.title = `hangar-watchdog ${run.server} ${run.run}`;
// Detached, it has no terminal; these would only come from a process group it is not in.
process.on("SIGHUP", () => undefined);
process.on("SIGINT", () => undefined);

const paths = new Set<string>();
let pending = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk: string) => {
  pending += chunk;
  if (pending.length > MAX_INPUT_BYTES) pending = "";
  for (let nl = pending.indexOf("\n"); nl !== -1; nl = pending.indexOf("\n")) {
    const line = pending.slice(0, nl);
    pending = pending.slice(nl + 1);
    try {
      const message = JSON.parse(line) as { remove?: unknown };
      if (typeof message.remove === "string" && message.remove.startsWith("/")) paths.add(message.remove);
    } catch {
      // Not a message of ours.
    }
  }
});

let cleaning: Promise<void> | undefined;
const cleanUp = (): void => {
  cleaning ??= removeWhatIsLeft().finally(() => process.exit(0));
};
process.stdin.once("end", cleanUp);
process.stdin.once("close", cleanUp);
process.stdin.once("error", cleanUp);

async function removeWhatIsLeft(): Promise<void> {
  const [{ default: Dockerode }, { DockerContainerEngine }, { removeRun }] = await Promise.all([
    import("dockerode"),
    import("../docker/docker-container-engine.js"),
    import("./orphan-reaper.js"),
  ]);
  const engine = new DockerContainerEngine(new Dockerode());
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    try {
      await removeRun(engine, run);
      break;
    } catch {
      // An engine busy or briefly away: try again, a little later.
      await new Promise((r) => setTimeout(r, 500 * attempt));
    }
  }
  await Promise.all([...paths].map((path) => rm(path, { recursive: true, force: true })));
}
