// Interop with the reference tools: a file encrypted by the package decrypts with the
// `age` command and with `coffre decrypt` (target/release/coffre, or $COFFRE_BIN); a
// file from `age -e` decrypts in the package. Run by hand, a test whose tool is missing
// is skipped with the reason; under `cargo xtask test` (COFFRE_REQUIRE_TOOLS=1) it fails,
// so CI never passes by skipping.
import { test } from 'node:test';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import init, { decrypt, encrypt, generateIdentity } from 'coffre';

await init();

const has = (cmd) => spawnSync(cmd, ['--version']).status === 0;
/** `false` when present; otherwise the reason to skip, or a failure when tools are required. */
function missing(present, reason) {
  if (present) return false;
  if (process.env.COFFRE_REQUIRE_TOOLS === '1') throw new Error(`required tool missing: ${reason}`);
  return reason;
}
const AGE = missing(has('age'), 'the age tool is not installed (apt-get install age)');
const COFFRE =
  process.env.COFFRE_BIN ?? fileURLToPath(new URL('../../../target/release/coffre', import.meta.url));
const NO_COFFRE = missing(existsSync(COFFRE), `${COFFRE} not built (cargo build --release -p coffre-cli)`);

/** 200 KiB + 5 bytes: several STREAM chunks and a short last one. */
function sample() {
  const data = new Uint8Array(200 * 1024 + 5);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + 7) & 0xff;
  return data;
}

function withTemp(f) {
  const dir = mkdtempSync(join(tmpdir(), 'coffre-interop-'));
  try {
    return f(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function sameBytes(a, b) {
  if (Buffer.compare(Buffer.from(a), Buffer.from(b)) !== 0) throw new Error('plaintexts differ');
}

test('package → age -d', { skip: AGE }, () =>
  withTemp((dir) => {
    const id = generateIdentity();
    const data = sample();
    writeFileSync(join(dir, 'key.txt'), `# test identity\n${id}\n`, { mode: 0o600 });
    writeFileSync(join(dir, 'doc.age'), encrypt(data, [id.recipient()]));
    const plain = execFileSync('age', ['-d', '-i', join(dir, 'key.txt'), join(dir, 'doc.age')]);
    sameBytes(plain, data);
  }));

test('age -e → package', { skip: AGE }, () =>
  withTemp((dir) => {
    execFileSync('age-keygen', ['-o', join(dir, 'key.txt')], { stdio: 'ignore' });
    const secret = readFileSync(join(dir, 'key.txt'), 'utf8')
      .split('\n')
      .find((l) => l.startsWith('AGE-SECRET-KEY-1'));
    const recipient = execFileSync('age-keygen', ['-y', join(dir, 'key.txt')], { encoding: 'utf8' }).trim();
    const data = sample();
    writeFileSync(join(dir, 'doc'), data);
    execFileSync('age', ['-e', '-r', recipient, '-o', join(dir, 'doc.age'), join(dir, 'doc')]);
    sameBytes(decrypt(new Uint8Array(readFileSync(join(dir, 'doc.age'))), [secret]), data);
  }));

test('package → coffre decrypt', { skip: NO_COFFRE }, () =>
  withTemp((dir) => {
    const id = generateIdentity();
    const data = sample();
    writeFileSync(join(dir, 'key.txt'), `${id}\n`, { mode: 0o600 });
    writeFileSync(join(dir, 'doc.age'), encrypt(data, [id.recipient()]));
    execFileSync(COFFRE, ['decrypt', '-i', join(dir, 'key.txt'), '-o', join(dir, 'doc'), join(dir, 'doc.age')]);
    sameBytes(readFileSync(join(dir, 'doc')), data);
  }));

test('package armor → age -d, age -a → package', { skip: AGE }, () =>
  withTemp((dir) => {
    execFileSync('age-keygen', ['-o', join(dir, 'key.txt')], { stdio: 'ignore' });
    const secret = readFileSync(join(dir, 'key.txt'), 'utf8')
      .split('\n')
      .find((l) => l.startsWith('AGE-SECRET-KEY-1'));
    const recipient = execFileSync('age-keygen', ['-y', join(dir, 'key.txt')], { encoding: 'utf8' }).trim();
    const data = sample();
    writeFileSync(join(dir, 'doc.txt'), encrypt(data, [recipient], { armor: true }));
    sameBytes(execFileSync('age', ['-d', '-i', join(dir, 'key.txt'), join(dir, 'doc.txt')]), data);
    writeFileSync(join(dir, 'doc'), data);
    execFileSync('age', ['-e', '-a', '-r', recipient, '-o', join(dir, 'age.txt'), join(dir, 'doc')]);
    const byAge = new Uint8Array(readFileSync(join(dir, 'age.txt')));
    sameBytes(decrypt(byAge, [secret]), data);
  }));

test('package armor → coffre decrypt', { skip: NO_COFFRE }, () =>
  withTemp((dir) => {
    const id = generateIdentity();
    const data = sample();
    writeFileSync(join(dir, 'key.txt'), `${id}\n`, { mode: 0o600 });
    writeFileSync(join(dir, 'doc.txt'), encrypt(data, [id.recipient()], { armor: true }));
    execFileSync(COFFRE, ['decrypt', '-i', join(dir, 'key.txt'), '-o', join(dir, 'doc'), join(dir, 'doc.txt')]);
    sameBytes(readFileSync(join(dir, 'doc')), data);
  }));
