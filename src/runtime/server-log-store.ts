import { closeSync, openSync, renameSync, writeSync } from "node:fs";
import { mkdir, readdir, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";

/**
 * The servers' stderr, kept on the host under the state directory so that `hangar logs` can
 * show it while a sandbox runs and after it has ended:
 *   <dir>/<server>/<run>.log     the newest lines
 *   <dir>/<server>/<run>.log.1   the lines before them, once the first file filled up
 * Bounded twice: a run keeps at most 2 × maxBytes, and the store at most maxRuns runs (the
 * oldest go first when a run opens).
 */
export interface ServerLogStoreOptions {
  readonly dir: string;
  /** Per file; a run keeps two. Default 512 KiB. */
  readonly maxBytes?: number;
  /** Default 50. */
  readonly maxRuns?: number;
}

export interface ServerLogEntry {
  readonly server: string;
  readonly run: string;
  readonly file: string;
  readonly bytes: number;
  readonly modifiedMs: number;
  /** Whether older lines were rotated out of it (the .1 file was replaced at least once). */
  readonly rotated: boolean;
}

const DEFAULT_MAX_BYTES = 512 * 1024;
const DEFAULT_MAX_RUNS = 50;
/** Policy names are [a-z0-9-]; run ids are hex. Anything else is not a file of ours. */
const NAME = /^[a-z0-9][a-z0-9-]*$/;

export class ServerLogStore {
  readonly dir: string;
  private readonly maxBytes: number;
  private readonly maxRuns: number;

  constructor(options: ServerLogStoreOptions) {
    this.dir = options.dir;
    this.maxBytes = Math.max(1024, options.maxBytes ?? DEFAULT_MAX_BYTES);
    this.maxRuns = Math.max(1, options.maxRuns ?? DEFAULT_MAX_RUNS);
  }

  /** Starts a run's log (removing the oldest runs beyond maxRuns). */
  async open(server: string, run: string): Promise<ServerLogWriter> {
    if (!NAME.test(server) || !NAME.test(run)) throw new RangeError(`server log: ${JSON.stringify(server)} (run ${JSON.stringify(run)}) is not a server name and run id`);
    await mkdir(join(this.dir, server), { recursive: true, mode: 0o700 });
    const writer = new ServerLogWriter(join(this.dir, server, `${run}.log`), this.maxBytes);
    const others = (await this.list()).filter((e) => !(e.server === server && e.run === run));
    for (const old of others.slice(this.maxRuns - 1)) await this.remove(old);
    return writer;
  }

  /** Every run's log, newest first. */
  async list(): Promise<ServerLogEntry[]> {
    const servers = await readdir(this.dir).catch(() => [] as string[]);
    const entries = await Promise.all(
      servers.filter((s) => NAME.test(s)).map(async (server) => {
        const files = await readdir(join(this.dir, server)).catch(() => [] as string[]);
        const runs = files.flatMap((f) => (f.endsWith(".log") && NAME.test(f.slice(0, -4)) ? [f.slice(0, -4)] : []));
        return Promise.all(
          runs.map(async (run): Promise<ServerLogEntry | undefined> => {
            const file = join(this.dir, server, `${run}.log`);
            const [info, older] = await Promise.all([stat(file).catch(() => undefined), stat(`${file}.1`).catch(() => undefined)]);
            if (info === undefined) return undefined;
            return { server, run, file, bytes: info.size + (older?.size ?? 0), modifiedMs: info.mtimeMs, rotated: older !== undefined };
          }),
        );
      }),
    );
    return entries
      .flat()
      .filter((e): e is ServerLogEntry => e !== undefined)
      .sort((a, b) => b.modifiedMs - a.modifiedMs);
  }

  /** A run's kept text: the rotated file, then the current one. */
  async read(entry: ServerLogEntry): Promise<string> {
    const { older, current } = await this.readParts(entry);
    return older + current;
  }

  /** The rotated file's text and the current file's, apart: following goes on from the current one's end. */
  async readParts(entry: ServerLogEntry): Promise<{ older: string; current: string }> {
    const [older, current] = await Promise.all([readFile(`${entry.file}.1`, "utf8").catch(() => ""), readFile(entry.file, "utf8").catch(() => "")]);
    return { older, current };
  }

  private async remove(entry: ServerLogEntry): Promise<void> {
    await Promise.all([rm(entry.file, { force: true }), rm(`${entry.file}.1`, { force: true })]);
  }
}

/**
 * Appends lines to one run's log. Synchronous writes: the lines keep their order, and what
 * was written is on disk even if the process is killed right after.
 */
export class ServerLogWriter {
  private fd: number | undefined;
  private size = 0;

  constructor(
    readonly file: string,
    private readonly maxBytes: number,
  ) {
    this.fd = openSync(file, "a", 0o600);
  }

  /** One line (without its newline); cut to the file bound if longer. */
  write(line: string): void {
    if (this.fd === undefined) return;
    let bytes = Buffer.from(`${line}\n`);
    if (bytes.length > this.maxBytes) bytes = Buffer.concat([bytes.subarray(0, this.maxBytes - 1), Buffer.from("\n")]);
    if (this.size + bytes.length > this.maxBytes) this.rotate();
    writeSync(this.fd!, bytes);
    this.size += bytes.length;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private rotate(): void {
    closeSync(this.fd!);
    renameSync(this.file, `${this.file}.1`);
    this.fd = openSync(this.file, "a", 0o600);
    this.size = 0;
  }
}
