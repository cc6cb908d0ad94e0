import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { HangarError } from "../../core/errors.js";

/**
 * Where a redirected connection was going. The sidecar's netns rewrites every connection the
 * sandbox makes to an address other than the sidecar's (nft `dnat`, see
 * src/runtime/sandbox-gateway.ts) to the catch-all port; the kernel keeps the original tuple
 * in conntrack, and getsockopt(SO_ORIGINAL_DST) reads it back without any capability. Node
 * has no getsockopt, hence the small addon in ./native (built into the sidecar image).
 */
export interface OriginalDestination {
  readonly address: string;
  readonly port: number;
}

export interface OriginalDestinationReader {
  /** The original destination of an accepted TCP socket's connection, by its file descriptor. */
  originalDst(fd: number): OriginalDestination;
}

/** One datagram taken off the UDP catch-all socket: who sent it, the header's destination, its size and first bytes. */
export interface CaughtDatagram {
  readonly from: string;
  readonly fromPort: number;
  /** The destination address as it arrived (IP_ORIGDSTADDR): the netns delivers any address locally, unchanged. */
  readonly address?: string;
  readonly port?: number;
  readonly size: number;
  readonly head: Buffer;
}

/** A non-blocking UDP socket with IP_RECVORIGDSTADDR, outside libuv (which drops the ancillary data). */
export interface DatagramCatcher {
  udpOpen(host: string, port: number): number;
  /** null: nothing waiting. */
  udpReceive(fd: number, maxBytes: number): CaughtDatagram | null;
  udpClose(fd: number): void;
}

/** Where the sidecar image builder puts the compiled addon, beside this module in dist. */
export const ADDON_FILE = fileURLToPath(new URL("./native/original-dst.node", import.meta.url));

/** Loads the addon; a sidecar image built without it (no C compiler on the build host) says so. */
export function loadOriginalDestinationReader(file = ADDON_FILE): OriginalDestinationReader & DatagramCatcher {
  if (!existsSync(file)) {
    throw new HangarError("HANGAR_CONFIG_INVALID", `catch-all needs the original-destination addon, but ${file} is missing (rebuild the sidecar image on a host with a C compiler)`, {
      data: { file },
    });
  }
  return createRequire(import.meta.url)(file) as OriginalDestinationReader & DatagramCatcher;
}

/** The kernel descriptor behind an accepted socket (libuv keeps it on the handle). */
export function socketFd(socket: object): number | undefined {
  const fd = (socket as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === "number" && fd >= 0 ? fd : undefined;
}
