import { deepStrictEqual, equal, throws } from "node:assert/strict";
import { parseParamArgs, resolveParams } from "../../lib/merge/params.ts";
import { describeRegistry, getMethod, MERGE_METHODS } from "../../lib/merge/registry.ts";

Deno.test("unknown methods and parameters name the valid ones", () => {
  throws(() => getMethod("tsvm"), /unknown merge method "tsvm": valid methods are average, /);
  throws(
    () => resolveParams(getMethod("ties"), { topk: 20 }),
    /method "ties" has no parameter "topk": valid parameters are k, merge, scaling/,
  );
});

Deno.test("parameter text is converted and checked against type and range", () => {
  const ties = getMethod("ties");
  deepStrictEqual(resolveParams(ties, parseParamArgs(["k=10", "merge=mean"])), {
    k: 10,
    merge: "mean",
    scaling: 0.3,
  });
  throws(() => resolveParams(ties, { k: "0" }), /"k" = "0": expected a number in \(0, 100\]/);
  throws(() => resolveParams(ties, { k: "abc" }), /expected a number/);
  throws(() => resolveParams(ties, { merge: "min" }), /expected one of sum, mean, max/);
  const dare = getMethod("dare_ta");
  throws(() => resolveParams(dare, { p: 1 }), /expected a number in \[0, 1\)/);
  throws(() => resolveParams(dare, { seed: 1.5 }), /expected a whole number/);
  equal(resolveParams(dare, { rescale: "false" }).rescale, false);
  throws(() => parseParamArgs(["k"]), /not of the form name=value/);
  throws(() => parseParamArgs(["k=1", "k=2"]), /given twice/);
});

Deno.test("every registry entry documents its defaults and they pass its own schema", () => {
  const names = new Set<string>();
  for (const m of MERGE_METHODS) {
    equal(names.has(m.name), false, `${m.name} registered twice`);
    names.add(m.name);
    const scaling = m.params.find((p) => p.name === "scaling");
    equal(scaling?.type, "number", `${m.name} has a scaling parameter`);
    const defaults = Object.fromEntries(m.params.map((p) => [p.name, p.default]));
    deepStrictEqual(resolveParams(m, defaults), resolveParams(m, {}));
    for (const p of m.params) equal(p.source.length > 10, true, `${m.name}.${p.name} source`);
  }
  const text = describeRegistry();
  for (const m of MERGE_METHODS) equal(text.includes(`${m.name}: ${m.title}`), true);
});
