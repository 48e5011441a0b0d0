import { deepStrictEqual, throws } from "node:assert/strict";
import { PickleGlobal, type PickleRules, readPickle } from "../../lib/io/pickle.ts";
import { runPython } from "../helpers/python.ts";

const NOTHING: PickleRules = {
  globals: new Set(),
  call: () => null,
  persistentLoad: () => null,
};

const bytes = (b64: string) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));

Deno.test("plain data pickled by Python (protocols 2 and 4) reads back", async () => {
  const out = await runPython(`
import base64, collections, pickle
value = {"s": "héllo", "i": [0, 255, 65535, -1, 2**31 - 1, -2**31, 2**40, -2**70],
         "f": [1.5, -0.0, 1e300], "t": (True, False, None), "b": b"\\x00\\xff", "n": {3: "x"},
         "shared": [[1, 2]] * 2, "long": "x" * 300}
for proto in (2, 4):
    print(base64.b64encode(pickle.dumps(value, protocol=proto)).decode())
print(base64.b64encode(pickle.dumps(collections.OrderedDict(a=1), protocol=4)).decode())
`);
  const [p2, p4, ordered] = out.trim().split("\n");
  const expected = new Map<string | number, unknown>([
    ["s", "héllo"],
    ["i", [0, 255, 65535, -1, 2 ** 31 - 1, -(2 ** 31), 2 ** 40, -(2n ** 70n)]],
    ["f", [1.5, -0, 1e300]],
    ["t", [true, false, null]],
    ["b", new Uint8Array([0, 255])],
    ["n", new Map([[3, "x"]])],
    ["shared", [[1, 2], [1, 2]]],
    ["long", "x".repeat(300)],
  ]);
  const encode: PickleRules = {
    globals: new Set(["_codecs.encode"]), // protocol 2 pickles bytes through it
    call: (_fn, args) => Uint8Array.from(args[0] as string, (c) => c.charCodeAt(0)),
    persistentLoad: () => null,
  };
  deepStrictEqual(readPickle(bytes(p2), encode, "p2"), expected);
  deepStrictEqual(readPickle(bytes(p4), NOTHING, "p4"), expected);
  const rules: PickleRules = {
    globals: new Set(["collections.OrderedDict"]),
    call: (fn) => fn instanceof PickleGlobal ? new Map() : null,
    persistentLoad: () => null,
  };
  deepStrictEqual(readPickle(bytes(ordered), rules, "od"), new Map([["a", 1]]));
});

Deno.test("pickles that build objects or name other globals are refused", () => {
  const text = (s: string) => new TextEncoder().encode(s);
  // protocol 0: os.system("echo hi")
  throws(
    () => readPickle(text("cos\nsystem\n(S'echo hi'\ntR."), NOTHING, "evil"),
    /evil: pickle byte 0: refers to os\.system, which is not among the allowed globals/,
  );
  // INST builds an instance of any class
  throws(() => readPickle(text("(ios\nsystem\n."), NOTHING, "inst"), /opcode INST/);
  // STACK_GLOBAL naming builtins.exec
  const stack = new Uint8Array([
    0x80,
    4,
    0x8c,
    8,
    ...text("builtins"),
    0x8c,
    4,
    ...text("exec"),
    0x93,
  ]);
  throws(() => readPickle(stack, NOTHING, "stack"), /builtins\.exec/);
  throws(() => readPickle(new Uint8Array([0x80, 2, 0x4e]), NOTHING, "short"), /without a STOP/);
  throws(() => readPickle(new Uint8Array([0x68, 7, 0x2e]), NOTHING, "memo"), /memo entry 7/);
});
