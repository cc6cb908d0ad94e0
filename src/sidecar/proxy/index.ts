/** The sidecar's proxy adapters: the public surface the composition root wires. */
export { TransparentListener, type TransparentListenerOptions } from "./transparent-listener.js";
export { ExplicitProxy, type ExplicitProxyOptions } from "./explicit-proxy.js";
export { ConnectionRate } from "./connection-rate.js";
export { ClientHelloParser, parseClientHello, type ClientHelloResult, type ClientHelloErrorReason } from "./client-hello.js";
export { HttpHeadParser, parseHttpHead, type HttpHead, type HttpHeadResult } from "./http/http-head.js";
export { peek, type PeekOutcome, type PeekParser } from "./peek.js";
export { splice, type SpliceStats } from "./splice.js";
