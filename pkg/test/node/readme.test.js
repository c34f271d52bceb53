// Runs every README code block marked `<!-- example: node -->`, as partners would paste
// it (a module importing 'coffre', resolved through the package's own exports).
import { test } from 'node:test';
import { readFileSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const blocks = [...readme.matchAll(/<!-- example: node -->\n```js\n([\s\S]*?)```/g)].map((m) => m[1]);
const dir = new URL('../readme-examples/', import.meta.url);

test('the README has Node examples', () => {
  if (blocks.length < 3) throw new Error(`only ${blocks.length} examples found`);
});

blocks.forEach((code, i) => {
  test(`README example ${i + 1}`, async () => {
    mkdirSync(dir, { recursive: true });
    const file = new URL(`example-${i + 1}.mjs`, dir);
    writeFileSync(file, code);
    try {
      await import(file);
    } finally {
      rmSync(file, { force: true });
    }
  });
});
