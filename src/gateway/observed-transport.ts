import type { Transport, TransportSendOptions } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { JSONRPCMessage, MessageExtraInfo } from "@modelcontextprotocol/sdk/types.js";

/**
 * Wraps a transport the launcher has already started, so the MCP Client's own start()
 * is a no-op, and so the launcher learns when it closes whoever else installs callbacks.
 */
export class ObservedTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: <T extends JSONRPCMessage>(message: T, extra?: MessageExtraInfo) => void;
  private closedFlag = false;

  constructor(
    private readonly inner: Transport,
    onClosed: () => void,
  ) {
    inner.onclose = () => {
      if (!this.closedFlag) {
        this.closedFlag = true;
        onClosed();
      }
      this.onclose?.();
    };
    inner.onerror = (error) => this.onerror?.(error);
    inner.onmessage = (message, extra) => this.onmessage?.(message, extra);
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  get sessionId(): string | undefined {
    return this.inner.sessionId;
  }

  async start(): Promise<void> {
    // Started by the launcher.
  }

  send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    return this.inner.send(message, options);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
