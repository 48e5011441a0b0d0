import { deepStrictEqual, equal, rejects, throws } from "node:assert/strict";
import { resolveStudyConfig, STUDY_DEFAULTS } from "../../lib/pipeline/config.ts";
import { parseStudyArgs } from "../../lib/pipeline/cli.ts";
import { tempDir } from "../helpers/temp.ts";

Deno.test("study defaults follow the paper where it fixes a value", () => {
  const c = resolveStudyConfig({});
  equal(c.suite, "mf8");
  equal(c.alpha, 1);
  equal(c.distance, "kl");
  equal(c.weightDecay, 1e-4);
  equal(c.batch, 128);
  equal(c.aux, "shapes");
  equal(c.ri, "both");
  equal(c.methods, "all");
  equal(c.name, `mf8-seed0-shapes-${STUDY_DEFAULTS.steps}steps`);
  // RI settings off their defaults name a different folder (a shared one would be refused).
  equal(
    resolveStudyConfig({ distance: "ce", lr: 1e-4 }).name,
    `mf8-seed0-shapes-${STUDY_DEFAULTS.steps}steps-ce-lr0.0001`,
  );
});

Deno.test("unknown keys and bad values name the key and list what is valid", () => {
  throws(() => resolveStudyConfig({ stepz: 3 }), /unknown key "stepz"; valid keys are .*steps/);
  throws(() => resolveStudyConfig({ suite: "mf3" }), /unknown suite "mf3"; valid suites are mf4/);
  throws(() => resolveStudyConfig({ steps: -1 }), /steps must be an integer ≥ 0/);
  throws(() => resolveStudyConfig({ lr: 0 }), /lr must be > 0/);
  throws(() => resolveStudyConfig({ ri: "maybe" }), /ri must be on, off or both/);
  throws(() => resolveStudyConfig({ distance: "l1" }), /unknown distance "l1": expected one of kl/);
  throws(() => resolveStudyConfig({ backend: "cuda" }), /unknown backend "cuda"/);
  throws(() => resolveStudyConfig({ aux: "imagenet" }), /aux must be shapes, noise, oracle/);
  throws(() => resolveStudyConfig({ name: "a/b" }), /name "a\/b" may hold only/);
});

Deno.test("flags override a config file, which overrides the defaults", async () => {
  await using dir = await tempDir();
  const file = `${dir.path}/study.json`;
  await Deno.writeTextFile(file, JSON.stringify({ suite: "mf4", steps: 7, methods: ["ties"] }));
  const { config } = await parseStudyArgs(["--config", file, "--steps", "9", "--aux-size", "512"]);
  equal(config.suite, "mf4");
  equal(config.steps, 9);
  equal(config.auxSize, 512);
  deepStrictEqual(config.methods, ["ties"]);
  await rejects(parseStudyArgs(["--stepz", "3"]), /valid flags: .*--steps/);
  await Deno.writeTextFile(file, JSON.stringify({ sweet: 1 }));
  await rejects(parseStudyArgs(["--config", file]), /--config .*: unknown key "sweet"/);
  await Deno.writeTextFile(file, "{ not json");
  await rejects(parseStudyArgs(["--config", file]), /not valid JSON/);
});

Deno.test("method parameters: checked against each method's schema, absent when none is given", () => {
  const c = resolveStudyConfig({
    methods: "regmean,adamerging",
    methodParams: "regmean.alpha=0.9, adamerging.examples=256",
  });
  deepStrictEqual(c.methodParams, { regmean: { alpha: "0.9" }, adamerging: { examples: "256" } });
  equal(c.name, "mf8-seed0-shapes-200steps-regmean.alpha0.9-adamerging.examples256");
  equal("methodParams" in resolveStudyConfig({}), false);
  deepStrictEqual(
    resolveStudyConfig({ methods: "regmean", methodParams: { regmean: { alpha: 0.5 } } })
      .methodParams,
    { regmean: { alpha: "0.5" } },
  );
  throws(
    () => resolveStudyConfig({ methods: "regmean", methodParams: "regmean.alpha=2" }),
    /parameter "alpha" = "2": expected a number in \[0, 1\]/,
  );
  throws(
    () => resolveStudyConfig({ methods: "regmean", methodParams: "ties.k=10" }),
    /methodParams for ties, which the study does not run/,
  );
  throws(() => resolveStudyConfig({ methodParams: "regmean:alpha" }), /method\.parameter=value/);
});

Deno.test("unseen tasks: names or a larger suite's extra tasks, never the suite's own", async () => {
  deepStrictEqual(resolveStudyConfig({}).unseen, []);
  deepStrictEqual(resolveStudyConfig({ suite: "mf4", unseen: "mf8" }).unseen, [
    "mnist_inv",
    "fashion_vflip",
    "mnist_parity",
    "fashion_coarse",
  ]);
  deepStrictEqual(
    resolveStudyConfig({ unseen: "mnist_shuffle, mf14,fashion_zoomout" }).unseen,
    [
      "mnist_shuffle",
      "fashion_shuffle",
      "mnist_edges",
      "fashion_rot90",
      "mnist_rot180_mod3",
      "fashion_edges_inv",
      "fashion_zoomout",
    ],
  );
  throws(() => resolveStudyConfig({ unseen: "mnist_rot90" }), /"mnist_rot90" is in suite mf8/);
  throws(() => resolveStudyConfig({ unseen: "mf4" }), /mf4 has no task outside mf8/);
  throws(() => resolveStudyConfig({ unseen: "svhn" }), /"svhn" is neither a suite .* nor a task/);
  throws(
    () => resolveStudyConfig({ models: "m.json", unseen: "mf14" }),
    /unseen tasks need a built-in suite/,
  );
  // Held-out tasks only add evaluations: the run keeps its name (and folder).
  equal(resolveStudyConfig({ unseen: "mf14" }).name, resolveStudyConfig({}).name);
  const { config } = await parseStudyArgs(["--suite", "mf4", "--unseen", "mnist_inv"]);
  deepStrictEqual(config.unseen, ["mnist_inv"]);
});
