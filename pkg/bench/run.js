// The package benchmark: `node bench/run.js` from pkg/ (or `cargo xtask bench-pkg`, which
// builds pkg/, the bench module and coffre-server first). One run measures, in Node and
// in headless Chromium, 64 MiB in 64 KiB pieces through the public streaming API next to
// libsodium-wrappers, @noble/ciphers and WebCrypto AES-GCM; native coffre (the CLI);
// X25519 and Argon2id; the client side of an OPAQUE login against the real
// coffre-server; peak wasm memory while streaming 1 GiB in Chromium; package sizes.
// Prints a Markdown report and writes it to docs/wasm-bench.md.
//
// The public API is measured on the shipped module (pkg/gen/). The in-wasm reference
// loops (encryption without the JS boundary, Argon2id alone) live in the bench module,
// pkg/bench/gen/: the same code built with the crate's `bench` feature, which the
// shipped module leaves out (`cargo xtask build-pkg --bench` builds it).
//
// Options: --mib N (default 64), --peak-mib N (default 1024), --rounds N (default 3),
// --logins N (OPAQUE logins measured per engine, default 7), --no-write.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import init, * as coffre from 'coffre';
import sodium from 'libsodium-wrappers';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { argon2id } from 'hash-wasm';
import { runBench, loginClient } from './cases.js';
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
const LOGINS = opt('--logins', 7);
const root = fileURLToPath(new URL('../../', import.meta.url));

function table(rows) {
  const out = ['| measure | op | value | unit |', '| --- | --- | ---: | --- |'];
  for (const r of rows) out.push(`| ${r.name} | ${r.op} | ${r.value} | ${r.unit} |`);
  return out.join('\n');
}

/** The bench module (pkg/bench/gen/), instantiated on its own next to the shipped one. */
async function benchModule() {
  const dir = new URL('./gen/', import.meta.url);
  if (!existsSync(new URL('coffre_wasm.js', dir))) {
    throw new Error('pkg/bench/gen/ is missing: run `cargo xtask build-pkg --bench` first');
  }
  const glue = await import(new URL('coffre_wasm.js', dir));
  await glue.default({ module_or_path: readFileSync(new URL('coffre_wasm_bg.wasm', dir)) });
  return glue;
}

async function node() {
  await init();
  await sodium.ready;
  const glue = await benchModule();
  return runBench(
    { coffre, glue, sodium, noble: { chacha20poly1305 }, argon2id, subtle: crypto.subtle },
    { mib: MIB_N, rounds: ROUNDS },
  );
}

const b64 = (bytes) => Buffer.from(bytes).toString('base64');
const unb64 = (text) => new Uint8Array(Buffer.from(text, 'base64'));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * The real coffre-server (release binary, $COFFRE_SERVER_BIN) on 127.0.0.1:0 with a
 * temporary data directory and server key, an organisation, and one worker account
 * registered through the HTTP API with the package. Resolves to null when the binary is
 * not built.
 */
async function coffreServer() {
  const bin = process.env.COFFRE_SERVER_BIN ?? join(root, 'target/release/coffre-server');
  if (!existsSync(bin)) return null;
  const dir = mkdtempSync(join(tmpdir(), 'coffre-bench-server-'));
  const data = join(dir, 'data');
  const env = { ...process.env, RUST_LOG: 'warn' };
  const admin = (...argv) => execFileSync(bin, [...argv, '--data', data], { encoding: 'utf8', env }).trim();
  const org = admin('org', 'create', 'bench');
  const invite = admin('invite', 'create', '--org', org);
  const child = spawn(bin, ['serve', '--listen', '127.0.0.1:0', '--data', data, '--server-key', join(dir, 'server.key')], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const close = async () => {
    child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const url = await new Promise((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
        const m = /listening on (http:\/\/\S+)/.exec(out);
        if (m) resolve(m[1]);
      });
      child.once('exit', (code) => reject(new Error(`coffre-server exited (${code}): ${stderr}`)));
    });
    const post = async (path, body) => {
      const res = await fetch(`${url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`POST ${path}: ${res.status} ${text}`);
      return JSON.parse(text);
    };
    // One worker account, registered as the web app does (passphrase and recovery
    // bundles, the recovery verifier computed by the package).
    const handle = 'bench-worker';
    const passphrase = 'correct horse battery staple bench';
    await init();
    const reg = coffre.Registration.start(passphrase);
    const started = await post('/v1/registrations/start', { registration_request: b64(reg.request) });
    const done = reg.finish(unb64(started.registration_response), started.ksf_version);
    const me = coffre.generateIdentity();
    const code = coffre.RecoveryCode.generate();
    const id = started.account_id;
    await post('/v1/workers', {
      invite,
      account: {
        account_id: id,
        handle,
        registration_upload: b64(done.upload),
        public_key: me.recipient(),
        bundle: b64(done.sealIdentity(me, id)),
        recovery_bundle: b64(code.sealIdentity(me, id)),
        recovery_verifier: b64(code.verifier(id)),
      },
    });
    const recipient = me.recipient();
    for (const o of [reg, done, me, code]) o.free();
    return { post, handle, passphrase, recipient, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/**
 * Logs in `LOGINS` times (after one warm-up login, which also grows wasm memory for
 * Argon2id) with `client`, the client side run in Node or in a Chromium page; the HTTP
 * round trips to the server are not timed. Rows: medians in ms.
 */
async function loginRows(server, client) {
  const runs = [];
  for (let i = 0; i <= LOGINS; i++) {
    const start = await client.start(server.passphrase);
    const started = await server.post('/v1/login/start', { handle: server.handle, login_request: b64(start.request) });
    const finish = await client.finish(unb64(started.login_response), started.ksf_version);
    const done = await server.post('/v1/login/finish', {
      login_id: started.login_id,
      login_finalization: b64(finish.finalization),
    });
    const open = await client.open(unb64(done.bundle), done.account.id);
    if (open.recipient !== server.recipient) throw new Error('the login opened another identity');
    if (i > 0) runs.push({ start: start.ms, finish: finish.ms, open: open.ms, total: start.ms + finish.ms + open.ms });
  }
  const name = 'OPAQUE login, client side vs the real coffre-server';
  const round = (ms) => Math.round(ms * 10) / 10;
  return [
    { name: `${name}: Login.start + finish + openBundle (median of ${LOGINS})`, op: 'login', value: round(median(runs.map((r) => r.total))), unit: 'ms' },
    { name: `${name}: Login.finish alone (Argon2id + 3DH)`, op: 'login', value: round(median(runs.map((r) => r.finish))), unit: 'ms' },
  ];
}

/** The client side of a login in a Chromium page (bench/page.html; bytes as arrays). */
function pageLoginClient(page) {
  return {
    start: async (passphrase) => {
      const r = await page.evaluate((p) => window.bench.loginStart(p), passphrase);
      return { request: new Uint8Array(r.request), ms: r.ms };
    },
    finish: async (response, ksf) => {
      const r = await page.evaluate(([res, k]) => window.bench.loginFinish(res, k), [Array.from(response), ksf]);
      return { finalization: new Uint8Array(r.finalization), ms: r.ms };
    },
    open: (bundle, accountId) =>
      page.evaluate(([b, a]) => window.bench.loginOpen(b, a), [Array.from(bundle), accountId]),
  };
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

async function chromium(coffreSrv) {
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
    if (coffreSrv) {
      const loginPage = await open();
      await loginPage.evaluate(() => window.bench.init());
      rows.push(...(await loginRows(coffreSrv, pageLoginClient(loginPage))));
      await loginPage.close();
    }
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
const coffreSrv = await coffreServer();
let chrome;
try {
  if (coffreSrv) nodeRows.push(...(await loginRows(coffreSrv, loginClient(coffre))));
  else nodeRows.push({ name: 'OPAQUE login: coffre-server not built (cargo build --release -p coffre-server)', op: '-', value: 0, unit: '-' });
  chrome = await chromium(coffreSrv);
} finally {
  await coffreSrv?.close();
}
const report = [
  '# coffre-wasm benchmark',
  '',
  `Latest run: ${new Date().toISOString()}, ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'} (shared machine: numbers vary),`,
  `${MIB_N} MiB in 64 KiB pieces, best of ${ROUNDS}. Node ${process.version}, Chromium ${chrome.version} (${CHROMIUM}).`,
  'Regenerate with `cargo xtask bench-pkg` (or `node bench/run.js` in pkg/ after `cargo xtask build-pkg --bench`).',
  'The public API runs on the shipped module (pkg/gen/); the in-wasm references run on the bench module',
  '(pkg/bench/gen/: the same code with the `bench` feature, which the package leaves out). OPAQUE logins',
  `run against the real coffre-server (release build) on 127.0.0.1 with a fresh data directory; one warm-up`,
  `login, then the median of ${LOGINS}; only the client side is timed, not the HTTP round trips.`,
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
  'One of the two modules is downloaded: the SIMD build where the engine validates SIMD, else the baseline.',
  'What the module is made of, and what each size change cost in speed: [wasm-size.md](wasm-size.md).',
  '',
  table(sizes()),
  '',
].join('\n');
console.log(report);
if (!args.includes('--no-write')) {
  writeFileSync(join(root, 'docs/wasm-bench.md'), report);
  console.error('written to docs/wasm-bench.md');
}
