// The package benchmark: `node bench/run.js` from pkg/ (or `cargo xtask bench`, which
// builds pkg/ first). One run measures, in Node and in headless Chromium, 64 MiB in
// 64 KiB pieces through the public streaming API next to libsodium-wrappers,
// @noble/ciphers and WebCrypto AES-GCM; native coffre (the CLI); X25519 and Argon2id;
// peak wasm memory while streaming 1 GiB in Chromium; package sizes. Prints a Markdown
// report and writes it to docs/wasm-bench.md.
//
// Options: --mib N (default 64), --peak-mib N (default 1024), --rounds N (default 3),
// --no-write.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import init, * as coffre from 'coffre';
import * as glue from '../gen/coffre_wasm.js';
import sodium from 'libsodium-wrappers';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { argon2id } from 'hash-wasm';
import { runBench } from './cases.js';
import { startServer } from '../test/browser/server.js';
import { launch, CHROMIUM } from '../test/browser/chromium.js';

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const MIB_N = opt('--mib', 64);
const PEAK_MIB = opt('--peak-mib', 1024);
const ROUNDS = opt('--rounds', 3);
const root = fileURLToPath(new URL('../../', import.meta.url));

function table(rows) {
  const out = ['| measure | op | value | unit |', '| --- | --- | ---: | --- |'];
  for (const r of rows) out.push(`| ${r.name} | ${r.op} | ${r.value} | ${r.unit} |`);
  return out.join('\n');
}

async function node() {
  await init();
  await sodium.ready;
  return runBench(
    { coffre, glue, sodium, noble: { chacha20poly1305 }, argon2id, subtle: crypto.subtle },
    { mib: MIB_N, rounds: ROUNDS },
  );
}

/** Native coffre-core through the release CLI (includes file I/O on tmpfs or disk). */
function native() {
  const bin = process.env.COFFRE_BIN ?? join(root, 'target/release/coffre');
  if (!existsSync(bin)) return [{ name: `native: ${bin} not built`, op: '-', value: 0, unit: '-' }];
  const dir = mkdtempSync(join(tmpdir(), 'coffre-bench-'));
  try {
    const id = coffre.generateIdentity();
    writeFileSync(join(dir, 'key'), `${id}\n`, { mode: 0o600 });
    writeFileSync(join(dir, 'plain'), new Uint8Array(MIB_N * 1024 * 1024).fill(7));
    const run = (argv) => {
      let best = Infinity;
      for (let i = 0; i < ROUNDS; i++) {
        const t0 = performance.now();
        const r = spawnSync(bin, argv);
        if (r.status !== 0) throw new Error(`${bin} ${argv.join(' ')}: ${r.stderr}`);
        best = Math.min(best, performance.now() - t0);
      }
      return (MIB_N / best) * 1000;
    };
    const enc = run(['encrypt', '-r', id.recipient(), '-o', join(dir, 'doc.age'), join(dir, 'plain')]);
    rmSync(join(dir, 'out'), { force: true });
    const dec = run(['decrypt', '-i', join(dir, 'key'), '-o', join(dir, 'out'), join(dir, 'doc.age')]);
    return [
      { name: 'native coffre CLI (file to file, incl. process start and I/O)', op: 'encrypt', value: Math.round(enc * 10) / 10, unit: 'MiB/s' },
      { name: 'native coffre CLI (file to file, incl. process start and I/O)', op: 'decrypt', value: Math.round(dec * 10) / 10, unit: 'MiB/s' },
    ];
  } catch (e) {
    return [{ name: `native: failed (${String(e.message).split('\n')[0]})`, op: '-', value: 0, unit: '-' }];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function chromium() {
  const server = await startServer({ allowNodeModules: true });
  const browser = await launch();
  try {
    const open = async () => {
      const page = await browser.newPage();
      page.on('pageerror', (e) => console.error('page error:', e));
      await page.goto(`${server.url}/pkg/bench/page.html`);
      await page.waitForFunction(() => document.title === 'ready');
      return page;
    };
    const page = await open();
    const rows = await page.evaluate((o) => window.bench.run(o), { mib: MIB_N, rounds: ROUNDS });
    await page.close();
    const fresh = await open();
    const peak = await fresh.evaluate((m) => window.bench.peak(m), PEAK_MIB);
    rows.push({ name: `peak WebAssembly.Memory while encrypting ${PEAK_MIB} MiB as a stream`, op: 'memory', value: Math.round((peak / 1048576) * 10) / 10, unit: 'MiB' });
    return { rows, version: browser.version() };
  } finally {
    await browser.close();
    await server.close();
  }
}

function sizes() {
  const rows = [];
  for (const f of ['gen/coffre_wasm_bg.wasm', 'gen/coffre_wasm_bg.simd.wasm', 'gen/coffre_wasm.js']) {
    const bytes = readFileSync(new URL(`../${f}`, import.meta.url));
    rows.push({ name: f, op: 'raw', value: Math.round(bytes.length / 102.4) / 10, unit: 'KiB' });
    rows.push({ name: f, op: 'gzip -9', value: Math.round(gzipSync(bytes, { level: 9 }).length / 102.4) / 10, unit: 'KiB' });
  }
  return rows;
}

const nodeRows = await node();
const nativeRows = native();
const chrome = await chromium();
const report = [
  '# coffre-wasm benchmark',
  '',
  `Latest run: ${new Date().toISOString()}, ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'} (shared machine: numbers vary),`,
  `${MIB_N} MiB in 64 KiB pieces, best of ${ROUNDS}. Node ${process.version}, Chromium ${chrome.version} (${CHROMIUM}).`,
  'Regenerate with `cargo xtask bench` (or `node bench/run.js` in pkg/ after a build).',
  '',
  '## Node',
  '',
  table(nodeRows),
  '',
  '## Native',
  '',
  table(nativeRows),
  '',
  '## Chromium (headless)',
  '',
  table(chrome.rows),
  '',
  '## Package size',
  '',
  table(sizes()),
  '',
].join('\n');
console.log(report);
if (!args.includes('--no-write')) {
  writeFileSync(join(root, 'docs/wasm-bench.md'), report);
  console.error('written to docs/wasm-bench.md');
}
