/**
 * Training state on disk (RI, distillation): τ', AdamW's moments and step, and the loss curve
 * so far, in one safetensors file written atomically. A state is only resumed by a job with
 * the same identity, auxiliary set size and settings (the step count may grow); anything else
 * is an error that says what differs, so a stale state never mixes into a new run.
 *
 * @module
 */
import type { Variable } from "../engine/tf_types.ts";
import { SafetensorsReader, type TensorToWrite, writeSafetensors } from "../io/safetensors.ts";
import type { AdamW, AdamWState } from "../train/adamw.ts";
import type { TrainJob, TrainSettings } from "./job.ts";
import { LossCurve } from "./curve.ts";

/** A saved training state. */
export interface TrainState {
  /** Steps done. */
  step: number;
  /** τ' by parameter name. */
  tau: Map<string, Float32Array>;
  /** AdamW's moments and step count. */
  adam: AdamWState;
  /** Loss curve up to `step`. */
  curve: LossCurve;
}

const KIND = "train-state/1";

/** What must match for a state to be resumed (everything but the step count). */
function identity(job: TrainJob, settings: TrainSettings): Record<string, unknown> {
  const { steps: _steps, ...rest } = settings;
  return { ...job.identity, auxCount: job.aux.count, config: job.config, ...rest };
}

/**
 * Writes the state atomically to `path`.
 *
 * @example
 * ```ts ignore
 * await saveTrainState(path, job, settings, step, tau, optimizer, curve);
 * ```
 */
export async function saveTrainState(
  path: string,
  job: TrainJob,
  settings: TrainSettings,
  step: number,
  tau: Record<string, Variable>,
  optimizer: AdamW,
  curve: LossCurve,
): Promise<void> {
  const adam = await optimizer.exportState();
  const tensors: TensorToWrite[] = [];
  for (const [name, v] of Object.entries(tau)) {
    tensors.push({ name: `tau/${name}`, shape: v.shape, data: await v.data() as Float32Array });
    tensors.push({ name: `adam_m/${name}`, shape: v.shape, data: adam.m.get(name)! });
    tensors.push({ name: `adam_v/${name}`, shape: v.shape, data: adam.v.get(name)! });
  }
  await writeSafetensors(path, tensors, {
    metadata: {
      kind: KIND,
      step: String(step),
      adam_t: String(adam.t),
      identity: JSON.stringify(identity(job, settings)),
      curve: JSON.stringify(curve),
    },
  });
}

/**
 * Reads the state at `path` if there is one (null when the file does not exist); throws when
 * it belongs to another run or is damaged.
 *
 * @example
 * ```ts ignore
 * const state = await loadTrainState(path, job, settings);
 * ```
 */
export async function loadTrainState(
  path: string,
  job: TrainJob,
  settings: TrainSettings,
): Promise<TrainState | null> {
  try {
    await Deno.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
  const file = await SafetensorsReader.open(path);
  try {
    const meta = file.metadata;
    if (meta.kind !== KIND) {
      throw new Error(`${path}: not a training state file (kind ${meta.kind})`);
    }
    const want = JSON.stringify(identity(job, settings));
    if (meta.identity !== want) {
      throw new Error(
        `${path}: this training state belongs to another run (saved ${meta.identity}, ` +
          `now ${want}); delete it or use another output folder`,
      );
    }
    const step = Number(meta.step);
    const tau = new Map<string, Float32Array>();
    const m = new Map<string, Float32Array>(), v = new Map<string, Float32Array>();
    for (const name of job.base.keys()) {
      tau.set(name, await file.read(`tau/${name}`));
      m.set(name, await file.read(`adam_m/${name}`));
      v.set(name, await file.read(`adam_v/${name}`));
    }
    const curve = LossCurve.fromJSON(JSON.parse(meta.curve));
    return { step, tau, adam: { t: Number(meta.adam_t), m, v }, curve };
  } finally {
    file.close();
  }
}
