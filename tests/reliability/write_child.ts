/**
 * A child process for the publication tests: writes a toy checkpoint and holds at a chosen
 * moment, after writing `marker`, so that the test can kill it there (no timing involved).
 *
 * ```sh
 * deno run -A write_child.ts OUT VALUE MAX_SHARD_BYTES HOLD MARKER
 * ```
 *
 * HOLD is `stage:N` (the N-th `onStage` call: locked, each file, published, done), `tensor:N`
 * (inside the write, after the N-th tensor, with a temporary file open) or `none`.
 *
 * @module
 */
import { writeCheckpointStaged } from "../../lib/io/write_checkpoint.ts";
import { toyCheckpoint } from "./publish_fixtures.ts";

if (import.meta.main) {
  const [out, value, maxShardBytes, hold, marker] = Deno.args;
  const [kind, at] = hold.split(":");
  const holdHere = (what: string) => {
    Deno.writeTextFileSync(marker, what);
    // Blocks the only thread: nothing of the write moves until the test kills this process.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
  };
  let stages = 0;
  await writeCheckpointStaged(out, toyCheckpoint(Number(value)), {
    maxShardBytes: maxShardBytes === "none" ? undefined : Number(maxShardBytes),
    onStage: (stage, file) => {
      if (kind === "stage" && ++stages === Number(at)) holdHere(`${stage} ${file}`);
    },
    onTensor: (name, done) => {
      if (kind === "tensor" && done === Number(at)) holdHere(`tensor ${name}`);
    },
  });
}
