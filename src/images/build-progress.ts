/** What an image build reports as it goes; the CLI prints these. */
export interface BuildProgress {
  /** The image (tag) this line is about. */
  readonly image: string;
  readonly phase: "check" | "reuse" | "stage" | "verify" | "install" | "build" | "done";
  readonly message: string;
}

export type ProgressListener = (progress: BuildProgress) => void;

export interface BuiltImage {
  /** The tag it was built or found under. */
  readonly ref: string;
  /** `sha256:...` image id (the digest of its config). */
  readonly id: string;
  /** Registry digests; empty for images that were never pushed. */
  readonly repoDigests: readonly string[];
  /** The hash of its inputs, also on the image as label `hangar.content`. */
  readonly contentHash?: string;
  /** True when an image with the same content hash already existed. */
  readonly reused: boolean;
}

/** A server image plus how to run it. */
export interface ServerImage extends BuiltImage {
  readonly source: "npm" | "build" | "image";
  /** Absent: the image's own ENTRYPOINT. */
  readonly entrypoint?: readonly string[];
  /** Absent: the image's own CMD. */
  readonly cmd?: readonly string[];
  /** npm: the recorded lockfile on the host, and the verified integrity of the package. */
  readonly lockfile?: string;
  readonly integrity?: string;
}

export const DEFAULT_BASE_IMAGE = "hangar/base:local";
export const DEFAULT_SIDECAR_IMAGE = "hangar/sidecar:local";
