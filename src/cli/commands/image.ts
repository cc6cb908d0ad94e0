import { defineGroup } from "../define-command.js";
import { imageBuildCommand } from "./image-build.js";

export const imageCommand = defineGroup({
  name: "image",
  summary: "Build the images a sandbox runs (base, sidecar, server)",
  usage: "hangar image <command> [options]",
  description: "Hangar builds every image locally and never pulls: the base from the host's own node, the sidecar from this package, the server from its policy.",
  commands: [imageBuildCommand],
});
