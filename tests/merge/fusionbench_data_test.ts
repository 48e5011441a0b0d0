/**
 * The data-using merge methods against FusionBench's own code (tests/merge/fusionbench_data.py
 * runs its files from a checkout), on the problem and batches of data_crosscheck_test.ts. CI has
 * no FusionBench checkout, so this runs only when `FUSION_BENCH_DIR` names one (the directory
 * holding `fusion_bench/`, e.g. `git -C MIRROR archive 54c9e8c fusion_bench | tar -x -C DIR`).
 *
 * FusionBench computes in float32 like ours: RegMean, RegMean++ (with `tail: pretrained`, its
 * rule for the post-LayerNorm and projection) and Fisher merging agree to float32 rounding
 * (max |diff| < 1e-4 · max |M|), AdaMerging's coefficient trajectories within 2e-4 per step (see
 * data_crosscheck_test.ts for why, and for the key-bias coefficients left out). Frank-Wolfe
 * merging (hard) makes FusionBench's choices at every iteration and its merged task vector agrees
 * to float32 rounding. Ada-SVD (with `projection: pretrained`: FusionBench's CLIPVisionModel has
 * no projection) agrees to float32 rounding too, its whole `run` executed.
 */
import { tempDir } from "../helpers/temp.ts";
import {
  adaMergingCase,
  closedForm,
  concreteAdaMergingCase,
  concreteCase,
  dataProblem,
  frankWolfeCase,
  frankWolfeSoftCase,
  FW_CASES,
  withFrozen,
  withoutKeyBiases,
} from "./data_fixtures.ts";

const ROOT = Deno.env.get("FUSION_BENCH_DIR");
const ignore = !ROOT;
if (ignore) {
  console.log(
    "fusionbench_data_test: skipped — set FUSION_BENCH_DIR to a tanganke/fusion_bench checkout " +
      "(commit 54c9e8c) to run FusionBench's own AdaMerging, RegMean, Fisher and Frank-Wolfe merging",
  );
}

Deno.test({
  name: "FusionBench's RegMean, RegMean++ and Fisher merging give our merged task vectors",
  ignore,
  fn: async (t) => {
    const p = await dataProblem(3);
    await using dir = await tempDir();
    try {
      for (const params of [{ examples: 20, batch: 8 }, { alpha: 1, examples: 0, batch: 16 }]) {
        await t.step(
          `regmean ${JSON.stringify(params)}`,
          () => closedForm("fusionbench_data", p, dir.path, "regmean", params),
        );
      }
      for (const params of [{ tail: "pretrained", examples: 20, batch: 8 }]) {
        await t.step(
          `regmean_plusplus ${JSON.stringify(params)}`,
          () => closedForm("fusionbench_data", p, dir.path, "regmean_plusplus", params),
        );
      }
      for (const params of [{ examples: 20, batch: 8 }, { normalize: false, batch: 10 }]) {
        await t.step(
          `fisher ${JSON.stringify(params)}`,
          () => closedForm("fusionbench_data", p, dir.path, "fisher", params),
        );
      }
    } finally {
      p.dispose();
    }
  },
});

Deno.test({
  name: "FusionBench's AdaMerging follows our coefficient trajectories",
  ignore,
  fn: async (t) => {
    const p = await dataProblem(3);
    await using dir = await tempDir();
    try {
      const cases: ["adamerging" | "adamerging_task", Record<string, unknown>][] = [
        ["adamerging_task", { steps: 20, lr: 0.01, batch: 6 }],
        ["adamerging_task", { steps: 12, lr: 0.01, batch: 8, init: 0.97, clamp: true, seed: 2 }],
        ["adamerging", { steps: 12, lr: 0.01, batch: 7 }],
        ["adamerging", { steps: 8, lr: 0.01, batch: 5, init: 0.99, clamp: true }],
      ];
      for (const [method, params] of cases) {
        await t.step(
          `${method} ${JSON.stringify(params)}`,
          () => adaMergingCase("fusionbench_data", p, dir.path, method, params),
        );
      }
    } finally {
      p.dispose();
    }
  },
});

Deno.test({
  name: "FusionBench's Frank-Wolfe merging (hard) makes our choices",
  ignore,
  fn: async (t) => {
    const p = withoutKeyBiases(await dataProblem(3));
    await using dir = await tempDir();
    try {
      for (const params of FW_CASES) {
        await t.step(
          JSON.stringify(params),
          () => frankWolfeCase("fusionbench_data", p, dir.path, params),
        );
      }
    } finally {
      p.dispose();
    }
  },
});

Deno.test({
  name: "FusionBench's Frank-Wolfe merging (soft) follows our rounds",
  ignore,
  fn: async (t) => {
    const p = await dataProblem(3);
    await using dir = await tempDir();
    try {
      // FusionBench fixes lr 1e-3, the first round's 0.3 and batches of 16.
      for (const params of [{ steps: 3, ada_steps: 8 }, { steps: 2, ada_steps: 6, seed: 1 }]) {
        await t.step(
          JSON.stringify(params),
          () => frankWolfeSoftCase("fusionbench_data", p, dir.path, params),
        );
      }
    } finally {
      p.dispose();
    }
  },
});

Deno.test({
  name: "FusionBench's Concrete Task Arithmetic follows our mask-logit trajectories",
  ignore,
  fn: async (t) => {
    const p = await dataProblem(3);
    await using dir = await tempDir();
    try {
      for (
        const params of [
          { steps: 6, lr: 0.01, batch: 6 },
          {
            steps: 5,
            lr: 0.01,
            batch: 8,
            temperature: 0.8,
            init: -0.5,
            scaling: 0.6,
            seed: 2,
            eval_mask: "discrete",
          },
        ]
      ) {
        await t.step(
          JSON.stringify(params),
          () => concreteCase("fusionbench_data", p, dir.path, params),
        );
      }
    } finally {
      p.dispose();
    }
  },
});

Deno.test({
  name: "FusionBench's Ada-SVD gives our merged task vectors",
  ignore,
  fn: async (t) => {
    const p = await dataProblem(3);
    await using dir = await tempDir();
    try {
      const frozen = withFrozen(p, "vision_model.encoder.layers.1.self_attn.q_proj.weight");
      const cases = [
        { label: "defaults", params: { projection: "pretrained" }, problem: p },
        {
          label: "gate_k 5, average_experts, one layer not fine-tuned",
          params: { projection: "pretrained", gate_k: 5, average_experts: true, seed: 2 },
          problem: frozen,
        },
        {
          label: "gate_k 2, 20 inputs",
          params: { projection: "pretrained", gate_k: 2, examples: 20 },
          problem: p,
        },
      ];
      for (const { label, params, problem } of cases) {
        await t.step(
          `ada_svd ${label}`,
          () => closedForm("fusionbench_data", problem, dir.path, "ada_svd", params),
        );
      }
    } finally {
      p.dispose();
    }
  },
});

Deno.test({
  name: "FusionBench's Concrete AdaMerging follows our logits and coefficients",
  ignore,
  fn: async (t) => {
    const p = await dataProblem(3);
    await using dir = await tempDir();
    try {
      const cases: ["concrete_adamerging" | "concrete_adamerging_task", Record<string, unknown>][] =
        [
          ["concrete_adamerging_task", {
            steps: 3,
            ada_steps: 4,
            lr: 0.01,
            base_lr: 0.05,
            ada_lr: 0.01,
            batch: 6,
          }],
          ["concrete_adamerging", {
            steps: 3,
            ada_steps: 3,
            lr: 0.01,
            base_lr: 0.05,
            ada_lr: 0.01,
            batch: 8,
            temperature: 0.8,
            lambda_init: 0.5,
            seed: 1,
            eval_mask: "discrete",
          }],
        ];
      for (const [method, params] of cases) {
        await t.step(
          `${method} ${JSON.stringify(params)}`,
          () => concreteAdaMergingCase("fusionbench_data", p, dir.path, method, params),
        );
      }
    } finally {
      p.dispose();
    }
  },
});
