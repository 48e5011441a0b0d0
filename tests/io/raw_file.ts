/**
 * Builds safetensors files byte by byte, bypassing the writer, so tests can make every kind
 * of broken file the reader must reject.
 *
 * @module
 */

/**
 * Writes `8-byte length + header + data` to `path`. `header` is JSON-encoded unless it is a
 * string (so a test can write invalid JSON or duplicate keys); `headerLength` overrides the
 * length field.
 *
 * @example
 * ```ts
 * import { writeRaw } from "./raw_file.ts";
 * const path = await Deno.makeTempFile();
 * await writeRaw(path, { w: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4));
 * ```
 */
export async function writeRaw(
  path: string,
  header: unknown,
  data: Uint8Array = new Uint8Array(0),
  headerLength?: number,
): Promise<void> {
  const json = new TextEncoder().encode(
    typeof header === "string" ? header : JSON.stringify(header),
  );
  const bytes = new Uint8Array(8 + json.length + data.length);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(headerLength ?? json.length), true);
  bytes.set(json, 8);
  bytes.set(data, 8 + json.length);
  await Deno.writeFile(path, bytes);
}

/**
 * Little-endian float32 bytes of `values`.
 *
 * @example
 * ```ts
 * import { f32Bytes } from "./raw_file.ts";
 * f32Bytes([1]); // Uint8Array [0, 0, 128, 63]
 * ```
 */
export function f32Bytes(values: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(values).buffer);
}
