/**
 * One writer at a time per checkpoint: an exclusive advisory lock (`flock`) on a lock file beside
 * the output. A second writer fails at once naming the first (its process id, host and start
 * time). The kernel releases the lock when its holder dies, even by `kill -9`, so a killed write
 * never blocks the next one; the lock file itself is removed by the holder when it is done.
 *
 * Taking the lock: open (creating) the file, try the lock, then check that the path still names
 * the file locked: a holder that finished may have removed it in between, and a lock on a
 * removed file guards nothing (then try again on the new file).
 *
 * @module
 */
import { CheckpointError } from "./errors.ts";

/** Who holds a lock, as written into the lock file. */
export interface LockHolder {
  /** Process id. */
  pid: number;
  /** Host name (process ids are per host). */
  host: string;
  /** When the lock was taken (ISO 8601). */
  since: string;
}

/**
 * An exclusive lock on `path`, held until {@linkcode WriteLock.release} (or `using`).
 *
 * @example
 * ```ts
 * import { equal, rejects } from "node:assert/strict";
 * import { WriteLock } from "./write_lock.ts";
 * const path = `${await Deno.makeTempDir()}/.model.lock`;
 * const lock = await WriteLock.acquire(path, "model.safetensors");
 * await rejects(WriteLock.acquire(path, "model.safetensors"), /another write .* is in progress/);
 * lock.release();
 * equal(await Deno.stat(path).then(() => true, () => false), false); // removed when released
 * (await WriteLock.acquire(path, "model.safetensors")).release(); // free again
 * ```
 */
export class WriteLock implements Disposable {
  #file: Deno.FsFile | undefined;

  private constructor(
    /** The lock file. */
    readonly path: string,
    file: Deno.FsFile,
  ) {
    this.#file = file;
  }

  /**
   * Takes the lock on `path` for writing `target` (named in the message when another process
   * holds it); fails at once, without waiting, when it is held.
   */
  static async acquire(path: string, target: string): Promise<WriteLock> {
    for (let attempt = 0; attempt < 8; attempt++) {
      let file: Deno.FsFile;
      try {
        file = await Deno.open(path, { read: true, write: true, create: true });
      } catch (err) {
        throw new CheckpointError(target, undefined, `cannot write: ${(err as Error).message}`);
      }
      let locked = false;
      try {
        locked = await file.tryLock(true);
        if (!locked) {
          const holder = await readHolder(path);
          throw new CheckpointError(
            target,
            undefined,
            `another write to this checkpoint is in progress (${
              describe(holder)
            }; lock ${path}): ` +
              `wait for it to finish, or write elsewhere`,
          );
        }
        if (await samePath(file, path)) {
          await file.truncate(0);
          const holder: LockHolder = {
            pid: Deno.pid,
            host: Deno.hostname(),
            since: new Date().toISOString(),
          };
          await file.write(new TextEncoder().encode(JSON.stringify(holder) + "\n"));
          return new WriteLock(path, file);
        }
      } catch (err) {
        file.close();
        throw err;
      }
      file.close(); // the holder before us removed this file: lock the new one
    }
    throw new CheckpointError(target, undefined, `cannot take the write lock ${path}`);
  }

  /** Removes the lock file, then releases the lock. */
  release(): void {
    const file = this.#file;
    if (!file) return;
    this.#file = undefined;
    try {
      Deno.removeSync(this.path);
    } catch {
      // already gone
    }
    file.close();
  }

  /** Releases the lock (`using` support). */
  [Symbol.dispose](): void {
    this.release();
  }
}

/** True when `path` still names the open `file` (same device and inode). */
async function samePath(file: Deno.FsFile, path: string): Promise<boolean> {
  const [a, b] = await Promise.all([file.stat(), Deno.stat(path).catch(() => undefined)]);
  if (!b) return false;
  if (a.ino === null || b.ino === null) return true; // no inodes: trust the path
  return a.dev === b.dev && a.ino === b.ino;
}

async function readHolder(path: string): Promise<LockHolder | undefined> {
  try {
    const holder = JSON.parse(await Deno.readTextFile(path));
    return typeof holder?.pid === "number" ? holder as LockHolder : undefined;
  } catch {
    return undefined;
  }
}

function describe(holder: LockHolder | undefined): string {
  if (!holder) return "held by another process";
  return `held by process ${holder.pid} on ${holder.host} since ${holder.since}`;
}
