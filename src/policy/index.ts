export { loadPolicyFile, MAX_POLICY_BYTES, type LoadPolicyOptions } from "./load-policy.js";
export { parsePolicyText } from "./parse-policy.js";
export { sortIssues, type IssuePath, type IssueSeverity, type PolicyIssue, type PolicyLoadResult } from "./policy-issue.js";
export { countIssues, formatIssue, formatIssues, formatPath, issuesToJson, type FileIssuesJson, type IssueCounts } from "./format-issues.js";
export { explainPolicy, INVARIANTS, type PolicyExplanation } from "./explain-policy.js";
export { formatExplanation } from "./format-explanation.js";
export { policySchemaText } from "./schema-text.js";
