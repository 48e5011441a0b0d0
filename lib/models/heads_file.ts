/**
 * The heads file: every task's frozen classification head (CLIP's zero-shot head: one text
 * embedding per class) in one safetensors file, as users produce it from their CLIP model
 * (docs/REAL_CHECKPOINTS.md has the Python that writes it).
 *
 * Format:
 * - one tensor `<task>.weight` of shape [classes, dim] per task (F32, F16, BF16 or F64), a row
 *   per class; `dim` is the model's projection dimension (512 for ViT-B/32). Only each row's
 *   direction matters: rows are L2-normalised on load, as CLIP's head uses unit class vectors
 *   (rows already multiplied by the logit scale, as some code stores them, are fine).
 * - `__metadata__.heads`: JSON `{"<task>": {"classes": ["name", …], "logitScale": 100}, …}`,
 *   tasks in file order. `classes` must have one name per row.
 * - the logit scale (the multiplier of cosine similarities, `exp(model.logit_scale)` = 100 for
 *   CLIP) per task as `logitScale` in the metadata, or for all tasks as a scalar tensor
 *   `logit_scale` holding CLIP's stored parameter, the logarithm (`model.logit_scale`, 4.6052),
 *   whose exponential is used. When both are given they must agree.
 *
 * Files written by `saveHeads` are heads files.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { SafetensorsReader } from "../io/safetensors.ts";
import { CheckpointError } from "../io/errors.ts";
import { shapeText } from "../tensor/host.ts";
import { disposeHead, type Head, makeHead } from "./head.ts";

/** Name of the optional scalar tensor holding CLIP's log logit scale. */
export const LOGIT_SCALE_TENSOR = "logit_scale";

/** Options of {@linkcode readHeadsFile}. */
export interface ReadHeadsOptions {
  /** The model's feature dimension (`projectionDim`): every head must match it. */
  featureDim?: number;
  /** Tasks that must be present; only these are returned, in this order (default: all). */
  tasks?: readonly string[];
}

/** One task's entry in the `heads` metadata. */
interface HeadEntry {
  classes: string[];
  logitScale?: number;
}

/**
 * Reads and validates a heads file (format in the module documentation). Errors name the
 * file, the tensor and what was expected. The caller disposes the heads (`disposeHead`).
 *
 * @example
 * ```ts
 * import { deepStrictEqual, ok } from "node:assert/strict";
 * import { readHeadsFile } from "../../mod.ts";
 * import { writeSafetensors } from "../io/safetensors.ts";
 * const path = await Deno.makeTempFile({ suffix: ".safetensors" });
 * await writeSafetensors(path, [
 *   { name: "mnist.weight", shape: [2, 3], data: new Float32Array([3, 0, 4, 0, 2, 0]) },
 *   { name: "logit_scale", shape: [], data: new Float32Array([Math.log(100)]) },
 * ], { metadata: { heads: JSON.stringify({ mnist: { classes: ["zero", "one"] } }) } });
 * const [head] = await readHeadsFile(path, { featureDim: 3 });
 * deepStrictEqual([head.task, head.classes], ["mnist", ["zero", "one"]]);
 * ok(Math.abs(head.logitScale - 100) < 1e-4); // exp(logit_scale)
 * const close = (a: number[][], b: number[][]) => a.every((r, i) => r.every((v, j) => Math.abs(v - b[i][j]) < 1e-6));
 * ok(close(head.weight.arraySync(), [[0.6, 0, 0.8], [0, 1, 0]])); // rows at unit norm
 * ```
 */
export async function readHeadsFile(path: string, options: ReadHeadsOptions = {}): Promise<Head[]> {
  using file = await SafetensorsReader.open(path);
  const entries = headsMetadata(file);
  const shared = await sharedLogitScale(file);
  checkTensors(file, entries);
  const tasks = options.tasks ?? Object.keys(entries);
  const heads: Head[] = [];
  try {
    for (const task of tasks) heads.push(await readHead(file, task, entries, shared, options));
  } catch (err) {
    heads.forEach(disposeHead);
    throw err;
  }
  return heads;
}

function headsMetadata(file: SafetensorsReader): Record<string, HeadEntry> {
  const fail = (problem: string) => new CheckpointError(file.path, undefined, problem);
  const text = file.metadata.heads;
  if (text === undefined) {
    throw fail(
      'no "heads" entry in __metadata__: a heads file lists its tasks as JSON ' +
        '{"<task>": {"classes": [...], "logitScale": 100}}',
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw fail(`__metadata__.heads is not valid JSON (${(err as Error).message})`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw fail("__metadata__.heads must be a JSON object of tasks");
  }
  const out: Record<string, HeadEntry> = {};
  for (const [task, entry] of Object.entries(json)) out[task] = headEntry(file.path, task, entry);
  if (Object.keys(out).length === 0) throw fail("__metadata__.heads lists no tasks");
  return out;
}

function headEntry(path: string, task: string, entry: unknown): HeadEntry {
  const fail = (problem: string) =>
    new CheckpointError(path, `${task}.weight`, `__metadata__.heads["${task}"]: ${problem}`);
  const { classes, logitScale } = (entry ?? {}) as Record<string, unknown>;
  if (!Array.isArray(classes) || !classes.every((c) => typeof c === "string")) {
    throw fail("classes must be a list of class names");
  }
  if (logitScale !== undefined && !(typeof logitScale === "number" && logitScale > 0)) {
    throw fail(`logitScale must be a positive number, got ${JSON.stringify(logitScale)}`);
  }
  return { classes, logitScale: logitScale as number | undefined };
}

/** exp(logit_scale) when the file has the scalar tensor. */
async function sharedLogitScale(file: SafetensorsReader): Promise<number | undefined> {
  if (!file.has(LOGIT_SCALE_TENSOR)) return undefined;
  const { shape } = file.info(LOGIT_SCALE_TENSOR);
  if (shape.reduce((a, b) => a * b, 1) !== 1) {
    throw new CheckpointError(
      file.path,
      LOGIT_SCALE_TENSOR,
      `has shape ${shapeText(shape)}, expected a scalar (CLIP's log logit scale)`,
    );
  }
  return Math.exp((await file.read(LOGIT_SCALE_TENSOR))[0]);
}

/** Every tensor is a listed head or the logit scale. */
function checkTensors(file: SafetensorsReader, entries: Record<string, HeadEntry>): void {
  for (const name of file.names()) {
    if (name === LOGIT_SCALE_TENSOR) continue;
    const task = name.endsWith(".weight") ? name.slice(0, -7) : undefined;
    if (task === undefined || !Object.hasOwn(entries, task)) {
      throw new CheckpointError(
        file.path,
        name,
        `is neither a listed task's "<task>.weight" nor "${LOGIT_SCALE_TENSOR}"`,
      );
    }
  }
}

async function readHead(
  file: SafetensorsReader,
  task: string,
  entries: Record<string, HeadEntry>,
  shared: number | undefined,
  options: ReadHeadsOptions,
): Promise<Head> {
  const name = `${task}.weight`;
  const fail = (problem: string) => new CheckpointError(file.path, name, problem);
  if (!Object.hasOwn(entries, task)) {
    throw fail(`task "${task}" has no head here (tasks: ${Object.keys(entries).join(", ")})`);
  }
  if (!file.has(name)) throw fail(`missing (task "${task}" is listed in __metadata__.heads)`);
  const { classes } = entries[task];
  const { shape, dtype } = file.info(name);
  if (!["F32", "F16", "BF16", "F64"].includes(dtype)) {
    throw fail(`has dtype ${dtype}, expected F32, F16, BF16 or F64`);
  }
  if (shape.length !== 2 || shape[0] !== classes.length || shape[0] === 0) {
    throw fail(`has shape ${shapeText(shape)}, expected [${classes.length} classes, dim]`);
  }
  if (options.featureDim !== undefined && shape[1] !== options.featureDim) {
    throw fail(
      `has feature dimension ${shape[1]}, but the model's features (projection) have ` +
        `${options.featureDim}`,
    );
  }
  const scale = logitScale(file.path, task, entries[task].logitScale, shared);
  const data = await file.read(name);
  checkNonZeroRows(file.path, name, data, shape[1], classes);
  const raw = tf.tensor2d(data, [shape[0], shape[1]]);
  try {
    return makeHead(task, classes, raw, scale);
  } finally {
    raw.dispose();
  }
}

function logitScale(
  path: string,
  task: string,
  own: number | undefined,
  shared: number | undefined,
): number {
  if (own !== undefined && shared !== undefined && Math.abs(own - shared) > 1e-3 * own) {
    throw new CheckpointError(
      path,
      `${task}.weight`,
      `logitScale ${own} in the metadata disagrees with exp(${LOGIT_SCALE_TENSOR}) = ${shared}`,
    );
  }
  const scale = own ?? shared;
  if (scale === undefined) {
    throw new CheckpointError(
      path,
      `${task}.weight`,
      `no logit scale: give "logitScale" in __metadata__.heads["${task}"] or a scalar ` +
        `"${LOGIT_SCALE_TENSOR}" tensor (CLIP's log scale)`,
    );
  }
  return scale;
}

function checkNonZeroRows(
  path: string,
  name: string,
  data: Float32Array,
  cols: number,
  classes: readonly string[],
): void {
  for (let r = 0; r < classes.length; r++) {
    let sum = 0;
    for (let c = 0; c < cols; c++) sum += data[r * cols + c] ** 2;
    if (!(sum > 0)) {
      throw new CheckpointError(path, name, `row ${r} (class "${classes[r]}") is all zeros`);
    }
  }
}
