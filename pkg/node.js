// Entry point for Node ≥ 20 (the "node" export condition): reads the .wasm next to this
// file from disk, since Node's fetch does not read file: URLs.
import { readFile } from 'node:fs/promises';
import wasmInit from './gen/coffre_wasm.js';
import { setExports, simdSupported } from './api.js';

export * from './api.js';

let ready;

/**
 * Loads the WebAssembly module. Await it once before any other call; later calls
 * return the same promise. `source` optionally overrides the module (bytes or a
 * compiled WebAssembly.Module).
 */
export function init(source) {
  ready ??= (async () => {
    const simd = source === undefined && simdSupported();
    const file = simd ? './gen/coffre_wasm_bg.simd.wasm' : './gen/coffre_wasm_bg.wasm';
    const module = source ?? (await readFile(new URL(file, import.meta.url)));
    setExports(await wasmInit({ module_or_path: module }), simd);
  })().catch((error) => {
    ready = undefined;
    throw error;
  });
  return ready;
}

export default init;
