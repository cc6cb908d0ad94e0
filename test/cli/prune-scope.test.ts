import { describe, expect, it } from "vitest";
import { createPruneCommand } from "../../src/cli/commands/prune.js";
import { creatorLabels, hangarLabels, LABEL_STATE_DIR, LABEL_UID, LABEL_USER } from "../../src/docker/labels.js";
import { outsideScope } from "../../src/runtime/prune-scope.js";
import { hangar } from "./capture-io.js";
import { listingEngine, sandbox } from "./listing-engine.js";

const ME = { uid: "1000", user: "me" };
const STATE = "/home/me/.state/hangar";

/** A sandbox whose owner process has ended, created by `creator` for state directory `stateDir`. */
function deadSandbox(server: string, run: string, creator: { uid: string; user: string } | undefined, stateDir: string | undefined): ReturnType<typeof sandbox> {
  const s = sandbox(server, run, undefined, "here:300");
  const relabel = (labels: Readonly<Record<string, string>>): Record<string, string> => {
    const { [LABEL_UID]: _uid, [LABEL_USER]: _user, ...rest } = labels;
    return { ...rest, ...(creator !== undefined ? creatorLabels(creator) : {}), ...(stateDir !== undefined ? { [LABEL_STATE_DIR]: stateDir } : {}) };
  };
  return { containers: s.containers.map((c) => ({ ...c, labels: relabel(c.labels) })), network: { ...s.network, labels: relabel(s.network.labels) } };
}

function engine() {
  return listingEngine(
    [
      deadSandbox("mine", "r1", ME, STATE),
      deadSandbox("theirs", "r2", { uid: "1001", user: "alice" }, "/home/alice/state"),
      deadSandbox("elsewhere", "r3", ME, "/srv/other-state"),
      deadSandbox("legacy", "r4", undefined, undefined),
    ],
    { volumes: [{ name: "vol-theirs", labels: hangarLabels({ server: "theirs", role: "server", run: "r2", creator: { uid: "1001", user: "alice" } }) }] },
  );
}

const prune = (argv: string[], e: ReturnType<typeof engine>, env: Record<string, string> = { HANGAR_STATE_DIR: STATE }) =>
  hangar(["prune", ...argv], { env, commands: [createPruneCommand({ openContext: e.open, ownerState: () => "dead", self: "here:100", uid: ME.uid })] });

describe("prune scope: this user's and this state directory's objects", () => {
  it("outsideScope: another uid, no uid label, another state directory; shared objects without a state directory are in", () => {
    const scope = { uid: "1000", stateDir: STATE };
    expect(outsideScope({ [LABEL_UID]: "1000", [LABEL_STATE_DIR]: STATE }, scope)).toBeUndefined();
    expect(outsideScope({ [LABEL_UID]: "1000" }, scope)).toBeUndefined();
    expect(outsideScope({ [LABEL_UID]: "1001", [LABEL_USER]: "alice", [LABEL_STATE_DIR]: STATE }, scope)).toEqual({ reason: "user", detail: "alice (uid 1001)" });
    expect(outsideScope({}, scope)).toEqual({ reason: "user", detail: "no user label" });
    expect(outsideScope({ [LABEL_UID]: "1000", [LABEL_STATE_DIR]: "/elsewhere" }, scope)).toEqual({ reason: "state-dir", detail: "/elsewhere" });
  });

  it("labels: everything Hangar labels carries its user; a run's objects carry their state directory", () => {
    const labels = hangarLabels({ server: "s", role: "server", run: "r", creator: ME, stateDir: STATE });
    expect(labels).toMatchObject({ [LABEL_UID]: "1000", [LABEL_USER]: "me", [LABEL_STATE_DIR]: STATE });
    expect(hangarLabels({ server: "s", role: "image", run: "r" })[LABEL_UID]).toBe(String(process.getuid?.() ?? -1));
  });

  it("by default removes only this user's sandboxes of this state directory, and says why the others stay", async () => {
    const e = engine();
    const run = await prune([], e);
    expect(run.code, run.stderr).toBe(0);
    expect(e.calls).toEqual(["remove sidecar-mine-r1", "remove server-mine-r1", "remove network net-mine-r1"]);
    expect(run.stdout).toContain("kept container hangar-theirs-r2-server (another user's: alice (uid 1001); --all removes it)");
    expect(run.stdout).toContain("kept volume vol-theirs (another user's: alice (uid 1001); --all removes it)");
    expect(run.stdout).toContain("kept container hangar-elsewhere-r3-sidecar (of state directory /srv/other-state; --state-dir or --all removes it)");
    expect(run.stdout).toContain("kept network hangar-legacy-r4 (another user's: no user label; --all removes it)");
  });

  it("--state-dir selects another state directory of this user; still never another user's", async () => {
    const e = engine();
    const run = await prune(["--state-dir", "/srv/other-state", "--json"], e);
    expect(run.code, run.stderr).toBe(0);
    expect(e.calls).toEqual(["remove sidecar-elsewhere-r3", "remove server-elsewhere-r3", "remove network net-elsewhere-r3"]);
    expect(JSON.parse(run.stdout)).toMatchObject({ all: false, scope: { uid: "1000", stateDir: "/srv/other-state" } });
  });

  it("--run takes that run from any state directory of this user's, never another user's", async () => {
    const elsewhere = await prune(["--run", "r3"], engine());
    expect(elsewhere.code, elsewhere.stderr).toBe(0);
    expect(elsewhere.stdout).toContain("removed container hangar-elsewhere-r3-server");
    const e = engine();
    const theirs = await prune(["--run", "r2"], e);
    expect(e.calls).toEqual([]);
    expect(theirs.stdout).toContain("kept container hangar-theirs-r2-server (another user's: alice (uid 1001); --all removes it)");
  });

  it("--all removes every user's and every state directory's objects", async () => {
    const e = engine();
    const run = await prune(["--all"], e);
    expect(run.code, run.stderr).toBe(0);
    for (const server of ["mine-r1", "theirs-r2", "elsewhere-r3", "legacy-r4"]) expect(e.calls).toContain(`remove server-${server}`);
    expect(e.calls).toContain("remove volume vol-theirs");
  });
});
