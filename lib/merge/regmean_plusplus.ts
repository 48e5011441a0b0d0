/**
 * RegMean++ (Nguyen et al., 2025, "RegMean++: Enhancing Effectiveness and Generalization of
 * Regression Mean for Model Merging", arXiv 2508.03121): RegMean's closed form per linear layer
 * (`regmean.ts`), but the inputs of layer ℓ come from the merged model: block by block, task t's
 * inputs run through the already merged embeddings and blocks < ℓ, then through expert t's own
 * block ℓ, whose linear layers' input Gram matrices G_t merge block ℓ. RegMean takes every
 * input from expert t's own earlier blocks instead.
 *
 * Order (FusionBench `RegMeanAlgorithmForCLIPPlusPlus`): the embeddings and the pre-LayerNorm
 * are averaged first; then each block: its linear weights by RegMean from those Gram matrices
 * (off-diagonals × α), its other tensors (biases, LayerNorms) averaged. The tail — the
 * post-LayerNorm and the visual projection — FusionBench leaves at θ0 (its `CLIPVisionModel`
 * experts never change the projection, and the block loop never reaches the post-LayerNorm);
 * this toolkit's experts fine-tune both, so by default (`tail: regmean`) the post-LayerNorm is
 * averaged and the projection merged by RegMean on the fully merged model's pooled features,
 * the same rule carried one layer further. `tail: pretrained` reproduces FusionBench.
 *
 * In task-vector form every step is linear in the τ_t, as for RegMean. The whole merge runs in
 * `prepare` (block ℓ needs blocks < ℓ merged), so it holds one merged model in memory.
 *
 * @module
 */
import type { HostParams } from "../models/weights.ts";
import type { ImageSet } from "../data/dataset.ts";
import { PROJECTION_NAME, VISION_PREFIX } from "../models/config.ts";
import { DATA_METHOD_NOT_DEFAULT, dataUseOf } from "./data.ts";
import { meanOf } from "./elementwise.ts";
import type {
  DataSourceName,
  MergeMethod,
  ParamSpec,
  PrepareContext,
  TensorMerger,
  Treatment,
} from "./method.ts";
import { numberParam, stringParam } from "./params.ts";
import {
  gramInputs,
  isRegMeanWeight,
  reduceOffDiagonal,
  REGMEAN_PARAMS,
  regMeanMatrix,
} from "./regmean.ts";

const FB = "FusionBench config/method/regmean_plusplus/clip_regmean_plusplus.yaml (54c9e8c)";

/** The block a tensor belongs to (`…layers.N.…` or `…resblocks.N.…`), or undefined. */
function blockOf(name: string): number | undefined {
  const m = name.match(/(?:^|\.)(?:layers|resblocks)\.(\d+)\./);
  return m ? Number(m[1]) : undefined;
}

/** Which stage of RegMean++ merges a tensor. */
type Stage = "embedding" | "block" | "tail";

function stageOf(name: string): Stage {
  if (blockOf(name) !== undefined) return "block";
  if (name === PROJECTION_NAME || name.startsWith(`${VISION_PREFIX}post_layernorm`)) return "tail";
  return "embedding";
}

const PARAMS: readonly ParamSpec[] = [
  ...REGMEAN_PARAMS.map((p) =>
    p.name === "alpha" ? { ...p, source: `${FB} reduce_non_diagonal_ratio: 0.95` } : p
  ),
  {
    name: "tail",
    type: "choice",
    choices: ["regmean", "pretrained"],
    default: "regmean",
    source: "ours: FusionBench (54c9e8c) leaves the post-LayerNorm and the projection at θ0 " +
      "(tail=pretrained reproduces it); this toolkit's experts fine-tune both",
    meaning: "post-LayerNorm averaged and projection merged by RegMean on the merged model's " +
      "features (regmean), or both left at θ0 (pretrained)",
  },
];

/** The RegMean++ method. */
export const regMeanPlusPlus: MergeMethod = {
  name: "regmean_plusplus",
  title: "RegMean++",
  summary: "RegMean with each block's input Gram matrices taken from the merged model: " +
    "blocks are merged in order, task t's inputs running through the merged earlier blocks " +
    "and expert t's own block.",
  paper: "Nguyen et al., RegMean++: Enhancing Effectiveness and Generalization of Regression " +
    "Mean for Model Merging, arXiv 2508.03121, 2025",
  code: "tanganke/fusion_bench (54c9e8c) fusion_bench/method/regmean_plusplus/" +
    "regmean_plusplus.py, clip_regmean_plusplus.py (nthehai01/RegMean-plusplus)",
  params: PARAMS,
  tensorRule: "embeddings and pre-LayerNorm: mean; each block in order: linear weights by " +
    "RegMean on the merged model's inputs, other tensors mean; post-LayerNorm: mean and " +
    "visual projection: RegMean (tail=regmean) or both θ0 (tail=pretrained)",
  needs: "data",
  notInDefaultStudy: DATA_METHOD_NOT_DEFAULT,
  fusionBench: {
    params: { tail: "pretrained" },
    note: "FusionBench's CLIP RegMean++ merges the embeddings and the blocks only, leaving the " +
      "post-LayerNorm and the projection at θ0; this toolkit's experts fine-tune both",
  },
  dataSource: (params) => stringParam(params, "data") as DataSourceName,
  usesLinalg: true,
  treatment(name: string, shape: readonly number[], params): Treatment {
    if (stageOf(name) === "tail" && params.tail === "pretrained") return "pretrained";
    return isRegMeanWeight(name, shape) ? "matrix" : "mean";
  },
  async prepare(context: PrepareContext): Promise<TensorMerger> {
    const merged = await mergeSequentially(context);
    return {
      tensor(name) {
        const m = merged.tensors.get(name);
        if (!m) throw new Error(`RegMean++: no merged tensor "${name}"`);
        return Float32Array.from(m.data);
      },
      dataUse: merged.use,
    };
  },
};

/** Runs RegMean++ over the whole model and returns M for every tensor. */
async function mergeSequentially(context: PrepareContext) {
  const { params } = context;
  const seed = numberParam(params, "seed");
  const alpha = numberParam(params, "alpha");
  const pretrainedTail = params.tail === "pretrained";
  const { dataPass, modelTensors } = await import("./model_pass.ts");
  const { inputGrams } = await import("./regmean_gram.ts");
  const tf = await import("@tensorflow/tfjs");
  const { source, examples, batch, taus, data } = await dataPass(context);
  const { config, base, norm } = data.model;
  const names = [...context.tasks[0].names()];
  const shapes = new Map(names.map((n) => [n, context.tasks[0].shape(n)]));
  const T = taus.length;
  const sets: ImageSet[] = [], picks: Int32Array[] = [];
  for (let t = 0; t < T; t++) {
    const set = await data.images(source, t);
    sets.push(set);
    picks.push(gramInputs(set.count, examples, batch, seed, `regmean/task${t}`));
  }
  const merged: HostParams = new Map();
  const average = (name: string) =>
    merged.set(name, {
      shape: shapes.get(name)!,
      data: meanOf(taus.map((t) => t.get(name)!.data)),
    });
  // The tensors of one stage, merged from Gram matrices measured with `merged` where it is set
  // and expert t elsewhere.
  const mergeStage = async (members: string[], phase: string) => {
    const linear = members.filter((n) => isRegMeanWeight(n, shapes.get(n)!));
    const grams: Map<string, { gram: Float64Array; size: number }>[] = [];
    for (let t = 0; t < T; t++) {
      const mix: HostParams = new Map(taus[t]);
      for (const [n, m] of merged) mix.set(n, m);
      const model = modelTensors(base, mix);
      try {
        const keep = (w: string) => linear.includes(w);
        grams.push(await inputGrams(config, model, sets[t], picks[t], batch, norm, keep));
      } finally {
        tf.dispose(Object.values(model));
      }
    }
    for (const name of members) {
      if (!linear.includes(name)) {
        average(name);
        continue;
      }
      const shape = shapes.get(name)!;
      const g = grams.map((m) => {
        const gram = m.get(name)!;
        return reduceOffDiagonal(gram.gram, gram.size, alpha);
      });
      const values = taus.map((t) => t.get(name)!.data);
      merged.set(name, { shape, data: regMeanMatrix(values, g, shape[0], shape[1], name) });
    }
    context.progress?.({
      phase: "RegMean++",
      done: merged.size,
      total: names.length,
      tensor: phase,
    });
  };
  for (const name of names.filter((n) => stageOf(n) === "embedding")) average(name);
  const blocks = [...new Set(names.map(blockOf).filter((b) => b !== undefined))].sort((a, b) =>
    a! - b!
  );
  for (const b of blocks) await mergeStage(names.filter((n) => blockOf(n) === b), `block ${b}`);
  const tail = names.filter((n) => stageOf(n) === "tail");
  if (pretrainedTail) {
    for (const name of tail) {
      merged.set(name, {
        shape: shapes.get(name)!,
        data: new Float32Array(taus[0].get(name)!.data.length),
      });
    }
  } else {
    // The post-LayerNorm first (averaged), so that the projection's inputs are the merged
    // model's normalised pooled features.
    for (const name of tail.filter((n) => n !== PROJECTION_NAME)) average(name);
    await mergeStage(tail.filter((n) => n === PROJECTION_NAME), "projection");
  }
  const perTask = Math.max(...picks.map((p) => p.length));
  return { tensors: merged, use: dataUseOf(data, source, perTask, false) };
}
