// Reads coffre-core's test vectors (crates/coffre-core/tests/testdata/): a `key: value`
// header, a blank line, then the age file (zlib-compressed if `compressed: zlib`).
// Environment-neutral: takes raw bytes and an inflate function.

/** Parses one vector file's bytes. `inflate(bytes) -> bytes | Promise<bytes>`. */
export async function parseVector(name, raw, inflate) {
  let split = -1;
  for (let i = 0; i + 1 < raw.length; i++) {
    if (raw[i] === 10 && raw[i + 1] === 10) {
      split = i;
      break;
    }
  }
  if (split < 0) throw new Error(`${name}: no blank line after the header`);
  const header = new TextDecoder().decode(raw.subarray(0, split));
  let file = raw.subarray(split + 2);
  const v = { name, expect: '', payload: null, identities: [], file };
  for (const line of header.split('\n')) {
    const at = line.indexOf(': ');
    const key = line.slice(0, at);
    const value = line.slice(at + 2);
    if (key === 'expect') v.expect = value;
    else if (key === 'payload') v.payload = value;
    else if (key === 'identity') v.identities.push(value);
    else if (key === 'compressed') {
      if (value !== 'zlib') throw new Error(`${name}: unknown compression ${value}`);
      file = await inflate(file);
    }
  }
  v.file = file;
  return v;
}

/**
 * CCTV counts the payload nonce as part of the header; Coffre reports a file cut
 * before or inside the nonce, or empty armor, as truncated. A file that starts with
 * text other than armor is not recognised as armor at all, so it is not an age file.
 * The same exceptions as coffre-core's tests/testkit.rs.
 */
const NONCE_TRUNCATION_VECTORS = ['stream_no_nonce', 'stream_short_nonce', 'armor_empty'];
const NOT_ARMOR_AT_ALL_VECTORS = ['armor_garbage_leading'];

/** The outcome class the vector expects, as Coffre reports it. */
export function expectedOutcome(v) {
  if (NONCE_TRUNCATION_VECTORS.includes(v.name)) return 'payload failure';
  if (NOT_ARMOR_AT_ALL_VECTORS.includes(v.name)) return 'header failure';
  return v.expect;
}

/** The outcome class of an error code (or of success). */
export function outcomeOf(code) {
  switch (code) {
    case undefined:
      return 'success';
    case 'NOT_AGE_FILE':
    case 'UNSUPPORTED_VERSION':
    case 'MALFORMED_HEADER':
      return 'header failure';
    case 'MALFORMED_ARMOR':
      return 'armor failure';
    case 'HEADER_MAC_MISMATCH':
      return 'HMAC failure';
    case 'NO_IDENTITY_MATCHED':
      return 'no match';
    case 'PAYLOAD_AUTHENTICATION_FAILED':
    case 'TRUNCATED':
    case 'TRAILING_DATA':
    case 'EMPTY_FINAL_CHUNK':
      return 'payload failure';
    default:
      return `other failure (${code})`;
  }
}

/** Hex of SHA-256 via WebCrypto (Node ≥ 20 and browsers). */
export async function sha256Hex(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Checks every vector with `api` (the package), one-shot and as a stream in pieces of
 * 7 bytes and 64 KiB + 3. A stream must yield exactly the plaintext that authenticated,
 * also when the file then fails (CCTV's payload hash covers it); the one-shot functions
 * return all or nothing. Returns a list of failure descriptions (empty when all pass).
 */
export async function checkVectors(api, vectors) {
  const failures = [];
  for (const v of vectors) {
    const want = expectedOutcome(v);
    const attempts = [
      ['one-shot', () => oneShot(api, v.file, v.identities)],
      ['stream/7', () => streamDecrypt(api, v.file, v.identities, 7)],
      ['stream/65539', () => streamDecrypt(api, v.file, v.identities, 65539)],
    ];
    for (const [how, attempt] of attempts) {
      if (how === 'stream/7' && v.file.length > 300_000) continue;
      const { plain, error } = await attempt();
      if (error !== undefined && !(error instanceof api.CoffreError)) {
        failures.push(`${v.name} (${how}): not a CoffreError: ${error}`);
        continue;
      }
      const got = outcomeOf(error?.code);
      if (got !== want) {
        failures.push(`${v.name} (${how}): expected ${want}, got ${got}`);
        continue;
      }
      const streamed = how !== 'one-shot';
      if (v.payload && (got === 'success' || streamed)) {
        if ((await sha256Hex(plain)) !== v.payload) {
          failures.push(`${v.name} (${how}): plaintext (${plain.length} bytes) hash differs`);
        }
      } else if (got !== 'success' && plain.length > 0) {
        failures.push(`${v.name} (${how}): ${plain.length} bytes released by a failing file`);
      }
    }
  }
  return failures;
}

async function oneShot(api, file, identities) {
  try {
    return { plain: api.decrypt(file, identities) };
  } catch (error) {
    return { plain: new Uint8Array(0), error };
  }
}

/** What `decryptStream` yields before it closes or errors, and its error if any. */
async function streamDecrypt(api, file, identities, piece) {
  const source = new ReadableStream({
    start(controller) {
      for (let at = 0; at < file.length; at += piece) controller.enqueue(file.slice(at, at + piece));
      controller.close();
    },
  });
  const parts = [];
  let total = 0;
  let error;
  try {
    for await (const part of api.decryptStream(source, identities)) {
      parts.push(part);
      total += part.length;
    }
  } catch (e) {
    error = e;
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return { plain: out, error };
}
