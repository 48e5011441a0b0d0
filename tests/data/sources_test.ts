import { deepStrictEqual, equal, throws } from "node:assert/strict";
import { loadSource, parseIdx, parseImageJson } from "../../lib/data/sources.ts";

Deno.test("MNIST: 60 000 + 10 000 images with the known first labels", async () => {
  const mnist = await loadSource("mnist");
  equal(mnist.count, 70_000);
  equal(mnist.pixels.length, 70_000 * 784);
  deepStrictEqual([...mnist.labels.slice(0, 10)], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
  deepStrictEqual([...mnist.labels.slice(60_000, 60_005)], [7, 2, 1, 0, 4]); // t10k
  const counts = new Array(10).fill(0);
  mnist.labels.forEach((y) => counts[y]++);
  deepStrictEqual(counts, [6903, 7877, 6990, 7141, 6824, 6313, 6876, 7293, 6825, 6958]);
});

Deno.test("Fashion-MNIST: 7 000 images per class, read as JSON.parse reads them", async () => {
  const fashion = await loadSource("fashion");
  equal(fashion.count, 70_000);
  for (let c = 0; c < 10; c++) equal(fashion.labels.filter((y) => y === c).length, 7_000);
  // The fast parser agrees with JSON.parse on a whole class file (two empty entries skipped).
  const url = new URL("./clothes/0.json", import.meta.resolve("fashion-mnist"));
  const parsed = JSON.parse(await Deno.readTextFile(url)).data as number[][];
  const flat = parsed.filter((img) => img.length > 0).flat();
  deepStrictEqual(fashion.pixels.subarray(0, flat.length), Uint8Array.from(flat));
});

Deno.test("malformed IDX and JSON files are rejected with the file and the problem", () => {
  throws(() => parseIdx(new Uint8Array([0, 0, 9, 1, 0, 0, 0, 1, 5]), "x.idx"), /x.idx: not an IDX/);
  throws(
    () => parseIdx(new Uint8Array([0, 0, 8, 1, 0, 0, 0, 3, 5]), "y.idx"),
    /y.idx: 1 data bytes/,
  );
  const text = (s: string) => new TextEncoder().encode(s);
  throws(() => parseImageJson(text('{"data":[[1,2,3]]}'), "a.json", 2), /a.json: .*3 values/);
  throws(() => parseImageJson(text('{"data":[[1,256]]}'), "b.json", 2), /above 255/);
  throws(() => parseImageJson(text('{"data":[[1,2.5]]}'), "c.json", 2), /unexpected character/);
  throws(() => parseImageJson(text('{"data":[[1,2]'), "d.json", 2), /ended inside/);
  throws(() => parseImageJson(text('{"pixels":[]}'), "e.json", 2), /expected \{"data"/);
});
