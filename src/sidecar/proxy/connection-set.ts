import type { Socket } from "node:net";

/**
 * The live sockets of one listener, for its lifecycle: `drained()` resolves when the last
 * one has closed, `destroyAll()` forces them. Sockets leave the set on their own 'close'.
 */
export class ConnectionSet {
  private readonly sockets = new Set<Socket>();
  private waiters: (() => void)[] = [];

  get size(): number {
    return this.sockets.size;
  }

  add(socket: Socket): void {
    if (socket.destroyed) return;
    this.sockets.add(socket);
    socket.once("close", () => {
      this.sockets.delete(socket);
      if (this.sockets.size === 0) this.wake();
    });
  }

  drained(): Promise<void> {
    if (this.sockets.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  destroyAll(): void {
    for (const s of this.sockets) s.destroy();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
