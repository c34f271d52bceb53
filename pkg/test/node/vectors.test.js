// coffre-core's test vectors (CCTV age vectors and Coffre's own), through the package.
import { test } from 'node:test';
import { readdir, readFile } from 'node:fs/promises';
import { inflateSync } from 'node:zlib';
import init, * as coffre from 'coffre';
import { parseVector, checkVectors } from '../shared/vectors.js';

const TESTDATA = new URL('../../../crates/coffre-core/tests/testdata/', import.meta.url);

export async function loadVectors() {
  const vectors = [];
  for (const dir of ['cctv', 'coffre']) {
    const names = (await readdir(new URL(`${dir}/`, TESTDATA))).filter((n) => !n.includes('.')).sort();
    for (const name of names) {
      const raw = new Uint8Array(await readFile(new URL(`${dir}/${name}`, TESTDATA)));
      vectors.push(await parseVector(name, raw, (b) => new Uint8Array(inflateSync(b))));
    }
  }
  return vectors;
}

test('every test vector gives its expected result', async () => {
  await init();
  const vectors = await loadVectors();
  if (vectors.length < 50) throw new Error(`only ${vectors.length} vectors found`);
  const failures = await checkVectors(coffre, vectors);
  if (failures.length > 0) throw new Error(`${failures.length} failures:\n${failures.join('\n')}`);
});
