import { deepStrictEqual, ok as assert } from "node:assert/strict";

const DEPLOY = new URL("../../deploy/", import.meta.url).pathname;

/** Runs deploy/run_expert.sh with `env` (no inherited task index) and returns its outcome. */
async function runExpert(env: Record<string, string>) {
  const clean = { ...Deno.env.toObject() };
  for (const k of ["RI_TASK_INDEX", "SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"]) delete clean[k];
  const out = await new Deno.Command("sh", {
    args: [`${DEPLOY}run_expert.sh`],
    env: { ...clean, ...env },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("run_expert.sh refuses a missing or bad task index before doing anything", async () => {
  const names = { RI_EXPERTS: "a b c", RI_CONFIG: "run.json" };
  const cases: [Record<string, string>, RegExp][] = [
    [names, /no task index/],
    [{ ...names, SLURM_ARRAY_TASK_ID: "3" }, /task index 3, but RI_EXPERTS names only 3 experts/],
    [{ ...names, JOB_COMPLETION_INDEX: "x1" }, /task index "x1" is not a number/],
    [{ RI_CONFIG: "run.json", RI_TASK_INDEX: "0" }, /set RI_EXPERTS/],
    [{ RI_EXPERTS: "a", RI_TASK_INDEX: "0" }, /set RI_CONFIG/],
  ];
  for (const [env, message] of cases) {
    const { code, stderr } = await runExpert(env);
    deepStrictEqual(code, 2, stderr);
    assert(message.test(stderr), stderr);
  }
});

Deno.test("job templates run one expert per index and chain the merge", async () => {
  const text = (p: string) => Deno.readTextFile(`${DEPLOY}${p}`);
  const indexed = await text("k8s/ri-experts.yaml");
  const experts = /name: RI_EXPERTS\s+value: "([^"]+)"/.exec(indexed)![1].split(" ");
  const count = (key: string) => Number(new RegExp(`${key}: (\\d+)`).exec(indexed)![1]);
  assert(/completionMode: Indexed/.test(indexed));
  deepStrictEqual([count("completions"), count("parallelism")], [experts.length, experts.length]);
  assert(/command: \["deploy\/run_expert\.sh"\]/.test(indexed));
  assert(/nvidia\.com\/gpu: 1/.test(indexed));
  assert(/"merge", "--config"/.test(await text("k8s/merge.yaml")));
  // WebGPU needs the NVIDIA runtime's graphics capability (Vulkan), not only compute.
  const graphics = /name: NVIDIA_DRIVER_CAPABILITIES\s+value: compute,utility,graphics/;
  assert(graphics.test(indexed) && graphics.test(await text("k8s/merge.yaml")));
  assert(/wait --for=condition=complete job\/ri-experts/.test(await text("k8s/submit.sh")));
  assert(/exec deploy\/run_expert\.sh/.test(await text("slurm/ri_experts.sbatch")));
  assert(/#SBATCH --gres=gpu:1/.test(await text("slurm/ri_experts.sbatch")));
  assert(/task merge --config "\$RI_CONFIG"/.test(await text("slurm/merge.sbatch")));
  const submit = await text("slurm/submit.sh");
  assert(/--array=0-\$\(\(\$# - 1\)\)/.test(submit) && /--dependency=afterok:/.test(submit));
  for (const script of ["run_expert.sh", "slurm/submit.sh", "k8s/submit.sh"]) {
    const { code } = await new Deno.Command("bash", { args: ["-n", `${DEPLOY}${script}`] })
      .output();
    deepStrictEqual(code, 0, `${script}: bash -n`);
  }
});
