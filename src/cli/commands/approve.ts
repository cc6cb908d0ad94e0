import { defineGroup } from "../define-command.js";
import { approveDenyCommand } from "./approve-deny.js";
import { approveGrantCommand } from "./approve-grant.js";
import { approveListCommand } from "./approve-list.js";
import { approveRequestCommand } from "./approve-request.js";

export const approveCommand = defineGroup({
  name: "approve",
  summary: "Request, list, grant and deny server approvals",
  usage: "hangar approve <command> [options]",
  description:
    "Only approved servers start. An approval pins what a server runs (source, command,\n" +
    "policy) and its tool manifest; a change needs a new approval. Every step is in the audit log.",
  commands: [approveRequestCommand, approveListCommand, approveGrantCommand, approveDenyCommand],
});
