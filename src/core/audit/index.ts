export {
  AUDIT_KINDS,
  isAuditKind,
  recordData,
  type ApprovalData,
  type AttributedCall,
  type AuditDataByKind,
  type AuditEntry,
  type AuditKind,
  type AuditRecord,
  type EgressData,
  type LifecycleData,
  type PolicyData,
  type ResultSummary,
  type ToolCallData,
  type ToolCallOutcome,
} from "./audit-record.js";
export { canonicalJson, MAX_CANONICAL_DEPTH, type JsonObject, type JsonPrimitive, type JsonValue } from "./canonical-json.js";
export { AUDIT_FORMAT_VERSION, chainRecord, genesisHash, recordHash, recordPreimage, sha256Hex, type ChainHead, type ChainedRecord, type RecordFields } from "./hash-chain.js";
export { checkpointPayload, checkpointSignatureValid, keyIdOf, signCheckpoint, type CheckpointClaim, type CheckpointSigner, type SignedCheckpoint } from "./checkpoint.js";
export { ANCHOR_TYPE, formatAnchor, MAX_ANCHOR_BYTES, parseAnchor } from "./anchor.js";
export { DEFAULT_REDACTION_LIMITS, isSecretKey, REDACTED, redactSecrets, secretValueReplacer, truncate, type RedactionRules } from "./redaction.js";
export { DEFAULT_PREVIEW_LENGTH, summariseResult } from "./result-summary.js";
export { egressEntry, toolCallEntry, type ToolCallInput } from "./entries.js";
export { InFlightCalls, type CallInFlight, type InFlightCallsOptions } from "./attribution.js";
export { ChainVerifier, type CheckpointRow, type RecordRow, type VerifyOptions, type VerifyReport } from "./chain-verifier.js";
export { sortProblems, type VerifyProblem, type VerifyProblemCode } from "./verify-problem.js";
export { parseTimeBound } from "./time-bound.js";
export { toOcsf, OCSF_VERSION, type OcsfEvent, type OcsfOptions } from "./ocsf.js";
