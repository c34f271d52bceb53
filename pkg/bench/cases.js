// The benchmark body, shared by Node and Chromium: returns rows of measurements.
// `libs` = { coffre (the package), glue (the bench module, bench/gen/coffre_wasm.js, for
// the in-wasm references), sodium, noble, argon2id (hash-wasm's), subtle }.

const MIB = 1024 * 1024;

async function time(f) {
  const t0 = performance.now();
  const result = await f();
  return { ms: performance.now() - t0, result };
}

function mbps(bytes, ms) {
  return bytes / MIB / (ms / 1000);
}

/** Best of `rounds` runs (the machine is shared; the best run is the least disturbed). */
async function best(rounds, f) {
  let min = Infinity;
  for (let i = 0; i < rounds; i++) min = Math.min(min, (await time(f)).ms);
  return min;
}

function pieces(total, piece) {
  const data = new Uint8Array(piece);
  for (let i = 0; i < piece; i++) data[i] = (i * 13) & 0xff;
  return { data, count: total / piece };
}

function sourceOf(list) {
  let i = 0;
  return new ReadableStream({
    pull(controller) {
      if (i >= list.length) controller.close();
      else controller.enqueue(list[i++]);
    },
  });
}

function repeatSource(data, count) {
  let i = 0;
  return new ReadableStream({
    pull(controller) {
      if (i++ >= count) controller.close();
      else controller.enqueue(data);
    },
  });
}

async function drain(readable, keep) {
  const reader = readable.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    if (keep) keep.push(value);
  }
}

/**
 * The client side of one OPAQUE login, step by step, each step timed; the bench script
 * relays the messages to coffre-server. The same code runs in Node and in the page.
 */
export function loginClient(coffre) {
  let login;
  let result;
  const timed = (f) => {
    const t0 = performance.now();
    const value = f();
    return { ...value, ms: performance.now() - t0 };
  };
  return {
    start: (passphrase) =>
      timed(() => {
        login = coffre.Login.start(passphrase);
        return { request: login.request };
      }),
    finish: (response, ksf) =>
      timed(() => {
        result = login.finish(response, ksf);
        login.free();
        return { finalization: result.finalization };
      }),
    open: (bundle, accountId) =>
      timed(() => {
        const id = result.openBundle(bundle, accountId);
        const recipient = id.recipient();
        id.free();
        result.free();
        return { recipient };
      }),
  };
}

export async function runBench(libs, { mib = 64, piece = 64 * 1024, rounds = 3 } = {}) {
  const { coffre, glue, sodium, noble, argon2id, subtle } = libs;
  const total = mib * MIB;
  const { data, count } = pieces(total, piece);
  const rows = [];
  const add = (name, op, value, unit) =>
    rows.push({ name, op, value: unit === '×' ? Math.round(value * 100) / 100 : Math.round(value * 10) / 10, unit });
  const id = coffre.generateIdentity();
  const recipient = id.recipient();

  // --- STREAM throughput ---
  const enc = await best(rounds, () => drain(coffre.encryptStream(repeatSource(data, count), [recipient])));
  add('coffre encryptStream (public streaming API)', 'encrypt', mbps(total, enc), 'MiB/s');
  const file = [];
  await drain(coffre.encryptStream(repeatSource(data, count), [recipient]), file);
  const dec = await best(rounds, () => drain(coffre.decryptStream(sourceOf(file), [id])));
  add('coffre decryptStream (public streaming API)', 'decrypt', mbps(total, dec), 'MiB/s');

  const push = await best(rounds, () => {
    const e = new coffre.Encryptor([recipient]);
    for (let i = 0; i < count; i++) e.push(data);
    e.finish();
    e.free();
  });
  add('coffre Encryptor.push loop', 'encrypt', mbps(total, push), 'MiB/s');
  const pushDec = await best(rounds, () => {
    const d = new coffre.Decryptor([]);
    d.addIdentity(id);
    for (const p of file) d.push(p);
    d.finish();
    d.free();
  });
  add('coffre Decryptor.push loop', 'decrypt', mbps(total, pushDec), 'MiB/s');
  const inWasm = await best(rounds, () => glue.benchEncryptInWasm(recipient, total, piece));
  add('coffre in wasm, no JS boundary (reference, bench module)', 'encrypt', mbps(total, inWasm), 'MiB/s');
  add('streaming API / in-wasm reference', 'encrypt', (100 * inWasm) / enc, '%');

  if (sodium) {
    const key = sodium.crypto_aead_chacha20poly1305_ietf_keygen();
    const nonce = new Uint8Array(12);
    const sealed = [];
    const s = await best(rounds, () => {
      sealed.length = 0;
      for (let i = 0; i < count; i++)
        sealed.push(sodium.crypto_aead_chacha20poly1305_ietf_encrypt(data, null, null, nonce, key));
    });
    add('libsodium-wrappers chacha20poly1305_ietf', 'encrypt', mbps(total, s), 'MiB/s');
    const o = await best(rounds, () => {
      for (const c of sealed) sodium.crypto_aead_chacha20poly1305_ietf_decrypt(null, c, null, nonce, key);
    });
    add('libsodium-wrappers chacha20poly1305_ietf', 'decrypt', mbps(total, o), 'MiB/s');
    add('coffre encryptStream / libsodium-wrappers', 'encrypt', s / enc, '×');
    add('coffre decryptStream / libsodium-wrappers', 'decrypt', o / dec, '×');
  }

  if (noble) {
    const key = new Uint8Array(32).fill(7);
    const nonce = new Uint8Array(12);
    const sealed = [];
    const s = await best(rounds, () => {
      sealed.length = 0;
      for (let i = 0; i < count; i++) sealed.push(noble.chacha20poly1305(key, nonce).encrypt(data));
    });
    add('@noble/ciphers chacha20poly1305', 'encrypt', mbps(total, s), 'MiB/s');
    const o = await best(rounds, () => {
      for (const c of sealed) noble.chacha20poly1305(key, nonce).decrypt(c);
    });
    add('@noble/ciphers chacha20poly1305', 'decrypt', mbps(total, o), 'MiB/s');
  }

  if (subtle) {
    const key = await subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
    const iv = new Uint8Array(12);
    const sealed = [];
    const s = await best(rounds, async () => {
      sealed.length = 0;
      for (let i = 0; i < count; i++) sealed.push(await subtle.encrypt({ name: 'AES-GCM', iv }, key, data));
    });
    add('WebCrypto AES-256-GCM', 'encrypt', mbps(total, s), 'MiB/s');
    const o = await best(rounds, async () => {
      for (const c of sealed) await subtle.decrypt({ name: 'AES-GCM', iv }, key, c);
    });
    add('WebCrypto AES-256-GCM', 'decrypt', mbps(total, o), 'MiB/s');
  }

  // --- X25519: opening a one-recipient file (X25519 + HKDF + header MAC + one chunk) ---
  // With the identity as a handle, as an app holds it after login: one X25519 per file.
  // With the identity as a string, each call also parses it, and parsing derives the
  // public key (a second scalar multiplication): shown for information.
  const small = coffre.encrypt(new Uint8Array(16), [recipient]);
  const n = 2000;
  const secret = id.toString();
  const handle = coffre.parseIdentity(secret);
  const unwrap = await best(rounds, () => {
    for (let i = 0; i < n; i++) coffre.decrypt(small, [handle]);
  });
  handle.free();
  add('coffre decrypt of a 16-byte file with an Identity handle (1 X25519 unwrap)', 'ops', n / (unwrap / 1000), 'ops/s');
  const parsed = await best(rounds, () => {
    for (let i = 0; i < n; i++) coffre.decrypt(small, [secret]);
  });
  add('coffre decrypt of a 16-byte file with the identity string (parse + unwrap)', 'ops', n / (parsed / 1000), 'ops/s');
  if (sodium) {
    const sk = sodium.randombytes_buf(32);
    const pk = sodium.crypto_scalarmult_base(sodium.randombytes_buf(32));
    const sm = await best(rounds, () => {
      for (let i = 0; i < n; i++) sodium.crypto_scalarmult(sk, pk);
    });
    add('libsodium-wrappers crypto_scalarmult', 'ops', n / (sm / 1000), 'ops/s');
    add('coffre unwrap rate / libsodium scalarmult', 'ops', sm / unwrap, '×');
  }

  // --- Argon2id at the login parameters (KSF v1: 64 MiB, t = 3, p = 1) ---
  const a = await best(rounds, () => glue.benchArgon2id(coffre.defaultKsfVersion()));
  add('coffre Argon2id (KSF v1: m=64 MiB, t=3, p=1; bench module)', 'hash', a, 'ms');
  if (argon2id) {
    const h = await best(rounds, () =>
      argon2id({
        password: 'correct horse battery staple',
        salt: new TextEncoder().encode('coffre-bench-salt'),
        parallelism: 1,
        iterations: 3,
        memorySize: 65536,
        hashLength: 64,
        outputType: 'binary',
      }),
    );
    add('hash-wasm argon2id (same parameters)', 'hash', h, 'ms');
    add('coffre Argon2id time / hash-wasm', 'hash', a / h, '×');
  }
  id.free();
  add('SIMD build loaded', 'info', coffre.usesSimd() ? 1 : 0, 'bool');
  return rows;
}

/** Streams `mib` MiB through encryptStream only; returns peak wasm memory in bytes. */
export async function peakMemory(coffre, mib) {
  const id = coffre.generateIdentity();
  const piece = 64 * 1024;
  const data = new Uint8Array(piece);
  let peak = coffre.wasmMemoryBytes();
  const reader = coffre.encryptStream(repeatSource(data, (mib * MIB) / piece), [id.recipient()]).getReader();
  for (;;) {
    const { done } = await reader.read();
    if (done) break;
    peak = Math.max(peak, coffre.wasmMemoryBytes());
  }
  id.free();
  return peak;
}
