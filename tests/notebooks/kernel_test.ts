import { deepStrictEqual, equal } from "node:assert/strict";
import { installKernelspec, kernelspecDir } from "../../tasks/kernel.ts";
import { tempDir } from "../helpers/temp.ts";

Deno.test("deno task kernel installs the kernelspec with NO_COLOR and signal interrupts", async () => {
  await using dir = await tempDir();
  const first = await installKernelspec({ dataHome: dir.path });
  equal(first.dir, kernelspecDir("deno", dir.path));
  equal(first.changed, true);
  const spec = JSON.parse(await Deno.readTextFile(`${first.dir}/kernel.json`));
  deepStrictEqual(spec.argv, [
    Deno.execPath(),
    "jupyter",
    "--kernel",
    "--conn",
    "{connection_file}",
  ]);
  deepStrictEqual(spec.env, { NO_COLOR: "1" });
  equal(spec.interrupt_mode, "signal");
  equal(spec.language, "typescript");

  // Jupyter itself finds it there.
  const listed = await new Deno.Command("jupyter", {
    args: ["kernelspec", "list", "--json"],
    env: { XDG_DATA_HOME: dir.path, JUPYTER_PATH: "" },
    stdout: "piped",
    stderr: "null",
  }).output();
  const specs = JSON.parse(new TextDecoder().decode(listed.stdout)).kernelspecs;
  equal(specs.deno.resource_dir, first.dir);
  equal(specs.deno.spec.interrupt_mode, "signal");

  // Idempotent: a second run changes nothing; a stale spec is rewritten.
  equal((await installKernelspec({ dataHome: dir.path })).changed, false);
  await Deno.writeTextFile(`${first.dir}/kernel.json`, JSON.stringify({ ...spec, env: {} }));
  const again = await installKernelspec({ dataHome: dir.path });
  equal(again.changed, true);
  equal(again.spec.env?.NO_COLOR, "1");
  deepStrictEqual(
    [...Deno.readDirSync(first.dir)].map((e) => e.name).filter((n) => n.endsWith(".tmp")),
    [],
  );
});
