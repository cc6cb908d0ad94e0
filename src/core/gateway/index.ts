export { canTransition, Lifecycle, SERVER_STATES, type ServerState, type StateChange } from "./lifecycle.js";
export { CircuitBreaker, type BreakerOptions, type BreakerPermit, type BreakerState } from "./circuit-breaker.js";
export { backoffDelay, type BackoffOptions } from "./backoff.js";
export { IdleTracker } from "./idle-tracker.js";
export {
  EXPOSED_NAME,
  exposedName,
  exposedResourceUri,
  MAX_EXPOSED_NAME_LENGTH,
  MAX_SERVER_NAME_LENGTH,
  NAMESPACE_SEPARATOR,
  namespaceNames,
  parseResourceUri,
  RESOURCE_URI_PREFIX,
  serverNameProblem,
  serverOf,
  type Namespace,
  type NamespaceConflict,
  type NamespacedEntry,
} from "./namespacing.js";
export { firstMatch, globMatches, globToRegExp } from "./glob.js";
export { EVERY_IDENTITY, Rbac, type AccessDecision, type RbacSpec, type RoleSpec } from "./rbac.js";
export { decideToolRule, type ToolRuleDecision, type ToolRules } from "./tool-rules.js";
export { RateLimiter, type RateDecision } from "./rate-limiter.js";
export { manifestDigest, pinManifest, toolDigest, type PinnedManifest, type ToolDescriptor } from "./manifest-digest.js";
export { describeDrift, manifestDrift, withheldByDrift, type ManifestDrift } from "./manifest-drift.js";
export { describeSource, pinDifferences, policyDigest, runPins, type ApprovalPins, type RunPins, type SourcePin } from "./source-pins.js";
export {
  approvalInForce,
  checkApproval,
  describeApprovalCheck,
  foldApprovals,
  MANIFEST_PINNED_ACTION,
  stepAllowed,
  toolGranted,
  type Approval,
  type ApprovalCheck,
  type ApprovalStatus,
} from "./approvals.js";
export {
  describeFinding,
  findingsByTool,
  MANIFEST_FINDING_CODES,
  normalizeToolName,
  scanManifest,
  type FindingSeverity,
  type ManifestFinding,
  type ManifestFindingCode,
  type ManifestPeer,
  type ManifestScan,
  type ScanContext,
  type ScannableTool,
} from "./manifest-scan.js";
export { ARGUMENT_DETECTORS, describeArgumentFindings, scanArguments, type ArgumentDetector, type ArgumentFinding, type ArgumentScan, type ArgumentScanOptions } from "./argument-scan.js";
export { DEFAULT_FLOW_LIMITS, describeChain, FlowTracker, labelsOf, type FlowCall, type FlowLimits, type FlowRule, type FlowViolation } from "./flow-tracker.js";
export { checkArgumentRules, declaredHostCheck, describeArgumentViolations, parseArgumentPath, withoutViolatingValues, type ArgumentCheck, type ArgumentRule, type ArgumentRuleViolation } from "./argument-rules.js";
export { decideResult, describeResultFindings, RESULT_FINDING_CODES, scanResult, type ResultFinding, type ResultFindingCode, type ResultVerdict } from "./result-scan.js";
