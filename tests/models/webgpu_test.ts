import { probeGpuAdapter } from "../../lib/engine/backend.ts";
import { crossCheck } from "./crosscheck.ts";
import { SMALL_VIT } from "../helpers/small_models.ts";

// On a CPU-only machine this runs on Mesa's software Vulkan (llvmpipe): slow, but it checks
// the WebGPU code path. Without any adapter the test is skipped.
const adapter = await probeGpuAdapter();
const available = !adapter.description.startsWith("no ") &&
  !adapter.description.startsWith("requestAdapter");

Deno.test({
  name: "ViT features, logits and gradients match PyTorch on the WebGPU backend",
  ignore: !available,
  fn: () => crossCheck(SMALL_VIT, "webgpu"),
});
