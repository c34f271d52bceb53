// The package API in Node: `node --test test/node/` (needs pkg/gen/, built by
// `cargo xtask`). The same cases run in Chromium (test/browser/).
import { test } from 'node:test';
import { readFile } from 'node:fs/promises';
import init, * as coffre from 'coffre';
import { cases, bigStream } from '../shared/api-cases.js';

await init();

for (const [name, run] of Object.entries(cases)) {
  test(name, async () => {
    const dts = await readFile(new URL('../../index.d.ts', import.meta.url), 'utf8');
    await run(coffre, dts);
  });
}

test('init() can be awaited again', async () => {
  await init();
  await coffre.init();
});

test('256 MiB stream: wasm memory stays small', async () => {
  const { peak } = await bigStream(coffre, 256);
  // Buffering would need at least 256 MiB; the stream keeps a few chunks at most.
  if (peak > 16 * 1024 * 1024) throw new Error(`wasm memory grew to ${peak} bytes`);
  console.log(`peak wasm memory: ${(peak / 1048576).toFixed(1)} MiB`);
});
