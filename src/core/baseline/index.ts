export {
  asFrozen,
  BASELINE_VERSION,
  BASELINE_VERSIONS,
  BaselineSchema,
  baselineJsonSchema,
  destinationKey,
  routeKey,
  type Baseline,
  type BaselineDestination,
  type BaselineRequest,
  type BaselineDnsEntry,
  type BaselineTool,
  type BaselineTunnelling,
  type BaselineVersion,
  type ConnectionProtocol,
  type FrozenBaseline,
  type TunnellingSignal,
} from "./baseline-schema.js";
export { canonicalBaseline, serialiseBaseline } from "./canonical.js";
export { type Attribution, type AttributedEgressEvent, type EventObservation, type Observation, type ToolCallObservation } from "./observation.js";
export { BaselineRecorder, DEFAULT_RATE_TOLERANCE, recordBaseline, type RecorderOptions } from "./baseline-recorder.js";
export { freezeBaseline, toBaselineView } from "./baseline-view.js";
export { detectDrift, DRIFT_SEVERITY, type Drift, type DriftCode, type DriftOptions, type DriftSeverity, type DriftSubjectKind } from "./drift.js";
export { buildDriftReport, type BehaviourCheck, type CheckStatus, type DriftReport, type DriftReportOptions } from "./drift-report.js";
export { diffBaselines, type BaselineDiff, type BaselineSide, type DestinationRoute, type EntryChange, type FieldChange, type SectionDiff } from "./baseline-diff.js";
export { MAX_REPEAT, planCalls, ScenarioSchema, scenarioJsonSchema, type PlannedCall, type Scenario, type ScenarioCall } from "./scenario-schema.js";
export { MINUTE_MS, SLICE_MS, type RateStats } from "./rate-stats.js";
export { DriftWatch } from "./drift-watch.js";
export {
  checkRequestShape,
  driftFieldNames,
  hostText,
  REQUEST_DRIFT_CODES,
  requestDriftReason,
  requestDriftSentence,
  requestText,
  routeDrift,
  toDestinationRoutes,
  toRequestShapeView,
  type DestinationRoutes,
  type RequestDriftCode,
  type RequestDriftFinding,
  type RequestFieldPlace,
  type RequestShapeView,
  type RouteObservation,
  type RouteShapes,
} from "./request-drift.js";
