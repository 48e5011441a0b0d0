/**
 * Test fixtures for the merge methods: tiny-ViT tensor layouts with Hugging Face
 * CLIPVisionModel names, random task vectors, and the PyTorch reference runner.
 *
 * @module
 */
import { writeSafetensors } from "../../lib/io/safetensors.ts";
import { numel } from "../../lib/tensor/host.ts";
import { MemorySource, type TensorSource } from "../../lib/tensor/source.ts";
import { Rng } from "../../lib/tensor/random.ts";
import { runPython } from "../helpers/python.ts";

/** A tiny CLIP vision tower's tensors (HF names): width 32, MLP 64, 2 layers, 17 positions. */
export function tinyVitLayout(
  { width = 32, mlp = 64, layers = 2, positions = 17, patch = 4, proj = 16 } = {},
): [string, number[]][] {
  const out: [string, number[]][] = [
    ["vision_model.embeddings.class_embedding", [width]],
    ["vision_model.embeddings.patch_embedding.weight", [width, 3, patch, patch]],
    ["vision_model.embeddings.position_embedding.weight", [positions, width]],
    ["vision_model.pre_layrnorm.weight", [width]],
    ["vision_model.pre_layrnorm.bias", [width]],
  ];
  for (let l = 0; l < layers; l++) {
    const p = `vision_model.encoder.layers.${l}`;
    for (const q of ["q_proj", "k_proj", "v_proj", "out_proj"]) {
      out.push([`${p}.self_attn.${q}.weight`, [width, width]], [`${p}.self_attn.${q}.bias`, [
        width,
      ]]);
    }
    out.push(
      [`${p}.layer_norm1.weight`, [width]],
      [`${p}.layer_norm1.bias`, [width]],
      [`${p}.mlp.fc1.weight`, [mlp, width]],
      [`${p}.mlp.fc1.bias`, [mlp]],
      [`${p}.mlp.fc2.weight`, [width, mlp]],
      [`${p}.mlp.fc2.bias`, [width]],
      [`${p}.layer_norm2.weight`, [width]],
      [`${p}.layer_norm2.bias`, [width]],
    );
  }
  out.push(
    ["vision_model.post_layernorm.weight", [width]],
    ["vision_model.post_layernorm.bias", [width]],
    ["visual_projection.weight", [proj, width]],
  );
  return out;
}

/**
 * Random task vectors over `layout`: Gaussian with std `scale`, or with `quantized` multiples of
 * 1/32 in [-0.25, 0.25] (biased slightly positive), so that magnitudes tie at TIES's threshold,
 * task sums cancel exactly and the whole-model majority sign is + (TIES's tie and zero-sign
 * rules then matter).
 */
export function randomTaskVectors(
  layout: [string, number[]][],
  tasks: number,
  seed: number,
  { scale = 0.1, quantized = false } = {},
): MemorySource[] {
  return Array.from({ length: tasks }, (_, t) => {
    const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
    for (const [name, shape] of layout) {
      const rng = new Rng(seed, `task${t}/${name}`);
      const data = new Float32Array(numel(shape));
      for (let j = 0; j < data.length; j++) {
        data[j] = quantized ? Math.round(rng.normal() * 3 + 0.4) / 32 : rng.normal() * scale;
        if (quantized && Math.abs(data[j]) > 0.25) data[j] = Math.sign(data[j]) * 0.25;
      }
      tensors[name] = { shape, data };
    }
    return new MemorySource(`τ${t}`, tensors);
  });
}

/** Writes a source to a safetensors file (F32). */
export async function writeSource(path: string, source: TensorSource): Promise<void> {
  await writeSafetensors(
    path,
    source.names().map((name) => ({
      name,
      shape: source.shape(name),
      data: () => source.read(name),
    })),
  );
}

/** One merge for the PyTorch reference: inputs, effective parameters and the output path. */
export interface ReferenceSpec {
  /** Registry name of the method. */
  method: string;
  /** Every parameter, explicitly. */
  params: Record<string, unknown>;
  /** Task-vector files, one per task. */
  tasks: string[];
  /** Where the reference writes α·M. */
  out: string;
  /** DARE's keep masks (0/1), one file per task. */
  masks?: string[];
  /** θ0, for methods that read it. */
  base?: string;
}

/**
 * Runs the PyTorch reference (tests/merge/reference.py) on each spec, in one Python process
 * (the spec list is written to `workDir`): each writes α·M to its `out`.
 */
export async function runReference(specs: ReferenceSpec[], workDir: string): Promise<void> {
  const dir = new URL(".", import.meta.url).pathname;
  const specFile = `${workDir}/specs.json`;
  await Deno.writeTextFile(specFile, JSON.stringify(specs));
  await runPython(
    `import sys, json
sys.path.insert(0, ${JSON.stringify(dir)})
import reference
reference.main_all(json.load(open(sys.argv[1])))`,
    [specFile],
  );
}

/** Something tensors can be read from by name. */
export type Readable = Pick<TensorSource, "names" | "read">;

/** Largest |a − b| over all tensors of `a` (which `b` must also hold). */
export async function maxAbsDiff(a: Readable, b: Readable): Promise<number> {
  let worst = 0;
  for (const name of a.names()) {
    const x = await a.read(name), y = await b.read(name);
    if (x.length !== y.length) throw new Error(`${name}: ${x.length} vs ${y.length} values`);
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
  }
  return worst;
}

/** The CLIP ViT-B/32 vision tower's tensors with HF names (87.8M parameters + projection). */
export function vitB32Layout(): [string, number[]][] {
  return tinyVitLayout({ width: 768, mlp: 3072, layers: 12, positions: 50, patch: 32, proj: 512 });
}

/**
 * A lazy model of uniform random weights in [-1, 1) (the same values on every read), plus
 * `noise` × another uniform draw for experts (`expert` ≥ 0), so nothing is held in memory.
 */
export function randomModel(
  layout: [string, number[]][],
  seed: number,
  expert = -1,
  noise = 0.01,
): TensorSource {
  const shapes = new Map(layout);
  return {
    label: expert < 0 ? "base" : `expert${expert}`,
    names: () => [...shapes.keys()],
    shape: (name) => shapes.get(name)!,
    read: (name) => {
      const data = new Float32Array(numel(shapes.get(name)!));
      const base = new Rng(seed, `base/${name}`);
      for (let i = 0; i < data.length; i++) data[i] = base.uniform() * 2 - 1;
      if (expert >= 0) {
        const delta = new Rng(seed, `expert${expert}/${name}`);
        for (let i = 0; i < data.length; i++) data[i] += noise * (delta.uniform() * 2 - 1);
      }
      return Promise.resolve(data);
    },
  };
}

const MERGE_TASK = new URL("../../tasks/merge.ts", import.meta.url).pathname;

/** Runs `deno task merge ARGS` in a child process (progress bars off). */
export function runMergeTask(
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return runTaskScript(MERGE_TASK, args);
}

/** Runs a task script (`tasks/NAME.ts`) with ARGS in a child process (progress bars off). */
export async function runTaskScript(
  script: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, ...args],
    env: { RI_PROGRESS: "off" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}
