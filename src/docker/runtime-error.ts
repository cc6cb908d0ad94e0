import { HangarError, type HangarErrorCode } from "../core/errors.js";

/** The stable codes of the Docker, image and sandbox adapters (a subset of HangarErrorCode). */
export type RuntimeErrorCode = Extract<
  HangarErrorCode,
  | "HANGAR_DOCKER"
  | "HANGAR_IMAGE_BUILD"
  | "HANGAR_IMAGE_MISSING"
  | "HANGAR_NPM"
  | "HANGAR_INTEGRITY_MISMATCH"
  | "HANGAR_SECRET_MISSING"
  | "HANGAR_SIDECAR_NOT_READY"
  | "HANGAR_SANDBOX_CONFLICT"
  | "HANGAR_SUBNET_EXHAUSTED"
  | "HANGAR_ISOLATION_UNAVAILABLE"
>;

export function runtimeError(
  code: RuntimeErrorCode,
  message: string,
  options: { cause?: unknown; data?: Record<string, unknown> } = {},
): HangarError {
  return new HangarError(code, message, options);
}

export function hasRuntimeCode(err: unknown, code: RuntimeErrorCode): boolean {
  return err instanceof HangarError && err.code === code;
}
