import { deepStrictEqual, rejects, throws } from "node:assert/strict";
import { initEngine, loadClipVision } from "../../mod.ts";
import { openClipExperts, resolveClipExpertsSpec } from "../../lib/models/clip_experts.ts";
import { tempDir } from "../helpers/temp.ts";
import { runScript, SMALL_CLIP, writeClipSet } from "./fixtures.ts";
import { assertSameValues } from "./arrays.ts";

Deno.test("a real-model description: paths resolved, keys and types checked", () => {
  const spec = resolveClipExpertsSpec(
    { base: "b", experts: { x: "/abs/x.pt" }, heads: "h", tasks: { x: "t" }, vit: { heads: 2 } },
    "/runs",
    "run.json",
  );
  deepStrictEqual(spec, {
    base: "/runs/b",
    experts: { x: "/abs/x.pt" },
    heads: "/runs/h",
    tasks: { x: "/runs/t" },
    vit: { heads: 2 },
  });
  throws(
    () => resolveClipExpertsSpec({ base: "b", expert: {} }, "/", "run.json"),
    /run\.json: unknown key "expert"/,
  );
  throws(
    () => resolveClipExpertsSpec({ base: "b", experts: {}, heads: "h" }, "/"),
    /experts must map task names/,
  );
  throws(
    () => resolveClipExpertsSpec({ base: 3, experts: { a: "a" }, heads: "h" }, "/"),
    /base must be a path, got 3/,
  );
});

Deno.test("a real-model experiment opens with everything cross-checked", async (t) => {
  await initEngine({ backend: "wasm" });
  await using dir = await tempDir();
  const d = dir.path;
  await writeClipSet(d);
  await runScript("images.py", [`${d}/pictures`, "32"]);
  const pictures = [...Deno.readDirSync(`${d}/pictures/imgs`)].map((e) => e.name).sort();
  // Test folders: task a's classes are a0…a2 (clip_set.py's heads), and so on.
  for (const [task, classes] of [["a", 3], ["b", 4], ["c", 5]] as const) {
    for (let k = 0; k < classes; k++) {
      await Deno.mkdir(`${d}/tests/${task}/${task}${k}`, { recursive: true });
      const pic = pictures[k % pictures.length];
      await Deno.copyFile(`${d}/pictures/imgs/${pic}`, `${d}/tests/${task}/${task}${k}/${pic}`);
    }
  }
  const json = {
    base: "hf/base",
    experts: { a: "oc/experts/a.pt", b: "hf/experts/b.safetensors", c: "hf/experts/c.safetensors" },
    heads: "heads.safetensors",
    tasks: { a: "tests/a", b: "tests/b", c: "tests/c" },
    aux: "pictures/imgs",
  };

  await t.step("models, heads, folders", async () => {
    using experiment = await openClipExperts(resolveClipExpertsSpec(json, d));
    deepStrictEqual(experiment.config, SMALL_CLIP);
    deepStrictEqual(experiment.tasks, ["a", "b", "c"]);
    deepStrictEqual(experiment.heads.map((h) => h.classes.length), [3, 4, 5]);
    deepStrictEqual(experiment.tests?.map((f) => [...f.labels]), [[0, 1, 2], [0, 1, 2, 3], [
      0,
      1,
      2,
      3,
      4,
    ]]);
    deepStrictEqual(experiment.aux?.count, pictures.length);
    const a = await experiment.expert("a");
    const direct = await loadClipVision(`${d}/oc/experts/a.pt`);
    for (const [name, tensor] of direct.host) {
      assertSameValues(a.get(name)!.data, tensor.data, name);
    }
    await rejects(experiment.expert("zz"), /no expert "zz" \(experts: a, b, c\)/);
  });

  await t.step("what does not fit together is named", async () => {
    const open = (change: Record<string, unknown>) =>
      openClipExperts(resolveClipExpertsSpec({ ...json, ...change }, d));
    await rejects(
      open({ experts: { ...json.experts, d: "hf/experts/a.safetensors" }, tasks: undefined }),
      /task "d" has no head here \(tasks: a, b, c\)/,
    );
    await rejects(
      open({ tasks: { a: "tests/b", b: "tests/b", c: "tests/c" } }),
      /tests\/b: sub-folder\(s\) "b0", "b1", "b2", "b3" match no class/,
    );
    await rejects(open({ tasks: { a: "tests/a" } }), /no test folder for expert "b"/);
    await rejects(open({ vit: { heads: 3 } }), /heads 3 must divide width 128/);
  });
});
