import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

/**
 * The native half of the sidecar's batched DNS socket (images/sidecar/native/udp-batch.c):
 * recvmmsg and sendmmsg on Node's own loop. It only moves bytes; see batched-udp.ts.
 */
export interface UdpBatchAddon {
  /** Binds host:port (0: a free one); returns the handle and the bound port. Throws with code EADDRINUSE, EACCES, … */
  open(
    host: string,
    port: number,
    slots: number,
    inBytes: number,
    outBytes: number,
    input: ArrayBuffer,
    output: ArrayBuffer,
    meta: ArrayBuffer,
    onBatch: (count: number) => void,
  ): [UdpBatchHandle, number];
  /** One datagram now; false when the kernel would not take it. */
  send(handle: UdpBatchHandle, buffer: Buffer, address: number, port: number): boolean;
  close(handle: UdpBatchHandle): void;
}

declare const handleBrand: unique symbol;
export type UdpBatchHandle = { readonly [handleBrand]: true };

/** Where the sidecar image builder puts the compiled addon: beside this module, which the bundle keeps as its own file. */
export const UDP_BATCH_ADDON_FILE = fileURLToPath(new URL("./native/udp-batch.node", import.meta.url));

/** The addon, or undefined when this build has none (an image built without a C compiler): the DNS server then uses dgram. */
export function loadUdpBatchAddon(file = UDP_BATCH_ADDON_FILE): UdpBatchAddon | undefined {
  if (!existsSync(file)) return undefined;
  return createRequire(import.meta.url)(file) as UdpBatchAddon;
}
