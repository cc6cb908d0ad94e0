import type { AddressInfo, Server } from "node:net";

/** Binds a net/http server, rejecting (not emitting) on the first error such as EADDRINUSE. */
export function bindServer(server: Server, host: string, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once("error", onError);
    server.listen({ host, port }, () => {
      server.off("error", onError);
      resolve();
    });
  });
}

export function boundAddress(server: Server): AddressInfo | undefined {
  const a = server.address();
  return a !== null && typeof a === "object" ? a : undefined;
}

/** Stops accepting (Node also drops idle keep-alive connections); resolves at once if never bound. */
export function stopAccepting(server: Server, wasListening: boolean): Promise<void> {
  return wasListening ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
}
