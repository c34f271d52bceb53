// Accounts and documents: the OPAQUE and key-bundle steps of the package, glued to the
// HTTP API. All cryptography runs here, in the page, through /pkg/ (wasm). Keys live in
// wasm objects; this module holds the handles and frees them at logout.

import init, {
  Registration,
  Login,
  RecoveryCode,
  Identity,
  Encryptor,
  Envelope,
  Metadata,
  CoffreError,
  decryptStream,
} from '/pkg/index.js';
import { ApiError, request, setToken, b64, unb64 } from './api.js';

/** The categories of a document, in display order (tags stored in sealed metadata). */
export const CATEGORIES = ['identity', 'health', 'housing', 'income', 'other'];

// Must equal coffre-core's RECOVERY_VERIFIER_LABEL (crates/coffre-core/src/recovery.rs):
// the server stores SHA-256(label || token) to check a recovery token, never the token.
const RECOVERY_VERIFIER_LABEL = new TextEncoder().encode('coffre/v1/recovery/verifier');

let identity = null; // the logged-in account's Identity handle
let account = null; // the account as the server shows it

export const ready = () => init();

/** The logged-in account ({id, handle, role, …}) or null. */
export function currentAccount() {
  return account;
}

/** A wasm error as a plain-words ApiError; other errors pass through. */
function plain(e, fallback = 'errCrypto') {
  if (e instanceof ApiError) return e;
  if (e instanceof CoffreError && e.code === 'INVALID_LOGIN') return new ApiError('errWrongLogin');
  return new ApiError(fallback);
}

/** Lets the browser paint a "please wait" before Argon2id holds the thread. */
const paint = () => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));

async function recoveryVerifier(token) {
  const data = new Uint8Array(RECOVERY_VERIFIER_LABEL.length + token.length);
  data.set(RECOVERY_VERIFIER_LABEL);
  data.set(token, RECOVERY_VERIFIER_LABEL.length);
  return new Uint8Array(await crypto.subtle.digest('SHA-256', data));
}

/**
 * Registers a new account: OPAQUE registration, a fresh identity sealed under the export
 * key and under a new recovery code. `send(account)` posts it (worker or beneficiary
 * endpoint). Returns the recovery code's text, to print.
 */
async function register(handle, secret, send) {
  const reg = Registration.start(secret);
  let result = null;
  let me = null;
  let code = null;
  try {
    const started = await request('POST', '/v1/registrations/start', {
      body: { registration_request: b64(reg.request) },
    });
    await paint();
    try {
      result = reg.finish(unb64(started.registration_response), started.ksf_version);
      me = Identity.generate();
      code = RecoveryCode.generate();
    } catch (e) {
      throw plain(e);
    }
    const id = started.account_id;
    const body = {
      account_id: id,
      handle,
      registration_upload: b64(result.upload),
      public_key: me.recipient(),
      bundle: b64(result.sealIdentity(me, id)),
      recovery_bundle: b64(code.sealIdentity(me, id)),
      recovery_verifier: b64(await recoveryVerifier(code.authToken(id))),
    };
    await send(body);
    return code.toString();
  } finally {
    reg.free();
    result?.free();
    me?.free();
    code?.free();
  }
}

/** Story 1: a social worker registers with their organisation's invite code. */
export function registerWorker(invite, handle, passphrase) {
  return register(handle, passphrase, (acct) =>
    request('POST', '/v1/workers', {
      body: { invite: invite.trim(), account: acct },
      problems: { forbidden: 'errInvite' },
    }),
  );
}

/** Story 2: a logged-in worker creates a beneficiary's account, with their consent. */
export function registerBeneficiary(handle, secret, consent) {
  return register(handle, secret, (acct) =>
    request('POST', '/v1/beneficiaries', { body: { consent, account: acct } }),
  );
}

/** Logs in: OPAQUE login, then opens the key bundle. Returns the account. */
export async function login(handle, passphrase) {
  await logout();
  const attempt = Login.start(passphrase);
  let result = null;
  try {
    const started = await request('POST', '/v1/login/start', {
      body: { handle, login_request: b64(attempt.request) },
    });
    await paint();
    try {
      result = attempt.finish(unb64(started.login_response), started.ksf_version);
    } catch (e) {
      // A wrong passphrase is found here; nothing is sent back (the server already
      // counted the attempt when the login started).
      throw plain(e, 'errWrongLogin');
    }
    const done = await request('POST', '/v1/login/finish', {
      body: { login_id: started.login_id, login_finalization: b64(result.finalization) },
    });
    try {
      identity = result.openBundle(unb64(done.bundle), done.account.id);
    } catch (e) {
      throw plain(e, 'errWrongLogin');
    }
    setToken(done.token);
    account = done.account;
    return account;
  } finally {
    attempt.free();
    result?.free();
  }
}

/** Logs out: the session is revoked (if the server is reachable) and keys are wiped. */
export async function logout() {
  const had = account !== null;
  identity?.free();
  identity = null;
  account = null;
  if (had) {
    try {
      await request('POST', '/v1/logout');
    } catch {
      // offline: the token is forgotten anyway and expires on the server
    }
  }
  setToken(null);
}

/** The caller's committed documents, metadata opened in the page. */
export async function listDocuments() {
  const docs = await request('GET', '/v1/documents');
  const out = [];
  for (const doc of docs) {
    if (!doc.committed || !doc.envelope) continue;
    let env = null;
    let meta = null;
    try {
      env = Envelope.parse(unb64(doc.envelope));
      meta = env.openMetadata(identity, unb64(doc.metadata));
      out.push({
        id: doc.id,
        envelope: doc.envelope,
        name: meta.name,
        mimeType: meta.mimeType,
        category: CATEGORIES.includes(meta.category) ? meta.category : 'other',
        createdAt: doc.created_at,
      });
    } catch {
      out.push({ id: doc.id, broken: true, name: '?', category: 'other' });
    } finally {
      meta?.free();
      env?.free();
    }
  }
  return out;
}

/** Bytes of a Blob through an Encryptor (push-based, 1 MiB at a time). */
async function encryptBlob(enc, blob, onProgress) {
  const parts = [];
  const reader = blob.stream().getReader();
  let done = 0;
  for (;;) {
    const { value, done: end } = await reader.read();
    if (end) break;
    for (let at = 0; at < value.length; at += 1 << 20) {
      const out = enc.push(value.subarray(at, at + (1 << 20)));
      if (out.length) parts.push(out);
    }
    done += value.length;
    onProgress?.(done / Math.max(blob.size, 1));
    await new Promise((r) => setTimeout(r, 0)); // keep the page responsive
  }
  parts.push(enc.finish());
  return new Blob(parts);
}

/**
 * Story 4: encrypts `file` in the page for the logged-in account and uploads it with its
 * sealed metadata. `onStep(step, fraction)`: 'encrypting' then 'uploading'.
 */
export async function uploadDocument(file, name, category, onStep) {
  let enc = null;
  let meta = null;
  let envelope;
  let sealed;
  let payload;
  try {
    enc = Encryptor.detached([identity.recipient()]);
    [envelope] = enc.envelopes();
    meta = new Metadata(name, file.type || 'application/octet-stream', category);
    sealed = enc.sealMetadata(meta);
    onStep?.('encrypting', 0);
    payload = await encryptBlob(enc, file, (f) => onStep?.('encrypting', f));
  } catch (e) {
    throw plain(e);
  } finally {
    meta?.free();
    enc?.free();
  }
  onStep?.('uploading', 0);
  const doc = await request('POST', '/v1/documents', {
    body: { metadata: b64(sealed), size: payload.size, envelope: b64(envelope) },
  });
  // Resumable: after a broken connection, ask where the server is and send the rest.
  let stored = 0;
  for (let tries = 0; stored < payload.size; tries++) {
    try {
      const status = await request('PATCH', `/v1/documents/${doc.id}/payload?offset=${stored}`, {
        body: payload.slice(stored),
      });
      stored = status.stored;
    } catch (e) {
      if (tries >= 3 || e.key !== 'errNetwork') throw e;
      await new Promise((r) => setTimeout(r, 1000 * (tries + 1)));
      stored = (await request('GET', `/v1/documents/${doc.id}/upload`)).stored;
    }
    onStep?.('uploading', stored / payload.size);
  }
  await request('POST', `/v1/documents/${doc.id}/commit`);
  return doc.id;
}

/** Story 5: downloads and decrypts a document; returns its original bytes as a Blob. */
export async function openDocument(doc) {
  const response = await request('GET', `/v1/documents/${doc.id}/payload`, { raw: true });
  const file = new Blob([unb64(doc.envelope), await response.blob()]);
  try {
    const plainText = decryptStream(file.stream(), [identity]);
    return await new Response(plainText).blob().then((b) => new Blob([b], { type: doc.mimeType }));
  } catch (e) {
    throw plain(e);
  }
}
