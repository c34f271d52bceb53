// Entry point for browsers (with or without a bundler) and Deno-like runtimes: the .wasm
// file is fetched from next to this module (bundlers see the `new URL(…, import.meta.url)`
// pattern in the generated glue and ship the file as an asset).
import wasmInit from './gen/coffre_wasm.js';
import { setExports, simdSupported } from './api.js';

export * from './api.js';

let ready;

/**
 * Loads the WebAssembly module (the SIMD build where the browser supports SIMD). Await it once before any other call; later calls
 * return the same promise. `source` optionally overrides where the .wasm comes from
 * (a URL, a Response, bytes or a compiled WebAssembly.Module).
 */
export function init(source) {
  const simd = source === undefined && simdSupported();
  // Both URLs are written out so that bundlers copy both modules.
  const url = simd
    ? new URL('./gen/coffre_wasm_bg.simd.wasm', import.meta.url)
    : new URL('./gen/coffre_wasm_bg.wasm', import.meta.url);
  ready ??= wasmInit({ module_or_path: source ?? url }).then(
    (exports) => setExports(exports, simd),
    (error) => {
      ready = undefined; // let a later call retry (e.g. after a network failure)
      throw error;
    },
  );
  return ready;
}

export default init;
