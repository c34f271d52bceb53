// Accounts and documents: the OPAQUE and key-bundle steps of the package, glued to the
// HTTP API. All cryptography runs here, in the page, through /pkg/ (wasm). Keys live in
// wasm objects; this module holds the handles and frees them at logout.

import init, {
  Registration,
  Login,
  RecoveryCode,
  RecoverySecret,
  Identity,
  Recipient,
  Envelope,
  CoffreError,
} from '/pkg/index.js';
import { ApiError, request, setToken, b64, unb64, remembered } from './api.js';

/** The categories of a document, in display order (tags stored in sealed metadata). */
export const CATEGORIES = ['identity', 'health', 'housing', 'income', 'other'];

let identity = null; // the logged-in account's Identity handle
let account = null; // the account as the server shows it

export const ready = () => init();

/** Runs `f` with the logged-in account's Identity handle (which stays in this module). */
export function withIdentity(f) {
  if (!identity) throw new ApiError('errSession');
  return f(identity);
}

/** The logged-in account ({id, handle, role, …}) or null. */
export function currentAccount() {
  return account;
}

/**
 * What other modules forget at logout (transfer.js: uploads, opened papers, worker), told
 * whether to forget everything (`false` for an expired session: an upload goes on after
 * the same person logs in again).
 */
const leaving = new Set();
export const onLogout = (f) => void leaving.add(f);

/** A wasm error as a plain-words ApiError; other errors pass through. */
export function plain(e, fallback = 'errCrypto') {
  if (e instanceof ApiError) return e;
  if (e instanceof CoffreError && e.code === 'INVALID_LOGIN') return new ApiError('errWrongLogin');
  if (e instanceof CoffreError && e.code.startsWith('RECOVERY_CODE')) return new ApiError('errRecoveryCode');
  return new ApiError(fallback);
}

/** Lets the browser paint a "please wait" before Argon2id holds the thread. */
const paint = () => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));

/**
 * Registers a new account: OPAQUE registration, a fresh identity sealed under the export
 * key and under a new recovery code. `send(account)` posts it (worker or beneficiary
 * endpoint). Returns the recovery code's text, to print.
 */
async function register(handle, secret, send, { referentSelf = false } = {}) {
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
      // What the server keeps to check the code later (a hash of a token derived from
      // it, never the code).
      recovery_verifier: b64(code.verifier(id)),
    };
    // The worker creating the account, chosen with the person as their first referent:
    // one share of a fresh recovery secret, sealed to the worker's own key.
    let referents;
    if (referentSelf) {
      const recoverySecret = RecoverySecret.generate();
      let dealt = null;
      try {
        dealt = recoverySecret.deal(1, [account.public_key], id);
        referents = {
          threshold: 1,
          shares: [{ referent: account.id, index: dealt.index(0), sealed_share: b64(dealt.sealedShare(0)), commitment: b64(dealt.commitment(0)) }],
          bundle: b64(recoverySecret.sealIdentity(me, id)),
          verifier: b64(recoverySecret.verifier(id)),
        };
      } catch (e) {
        throw plain(e);
      } finally {
        dealt?.free();
        recoverySecret.free();
      }
    }
    await send(body, referents);
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
export function registerBeneficiary(handle, secret, consent, referentSelf = false) {
  return register(handle, secret, (acct, referents) =>
    request('POST', '/v1/beneficiaries', { body: { consent, account: acct, referents } }),
  { referentSelf });
}

/**
 * Device credentials: a personal device that logged in once gets one from the server, and
 * with it login tries of its own, so that strangers' wrong tries on a handle never shut
 * the person's own phone out. Never kept on a shared computer.
 */
const devices = remembered('device');

/**
 * Logs in: OPAQUE login, then opens the key bundle. Returns the account. On a shared
 * computer nothing is remembered (no device credential is asked for or kept).
 */
export async function login(handle, passphrase, { shared = false } = {}) {
  await logout();
  const attempt = Login.start(passphrase);
  let result = null;
  try {
    const device = shared ? null : await devices.get(handle);
    const body = { handle, login_request: b64(attempt.request), remember_device: !shared && !device };
    if (device) body.device = device;
    const started = await request('POST', '/v1/login/start', { body });
    await paint();
    try {
      result = attempt.finish(unb64(started.login_response), started.ksf_version);
    } catch (e) {
      // A wrong passphrase is found here; nothing is sent back (the server already
      // counted the attempt when the login started). Near the limit, the server said how
      // many tries remain after this one.
      const err = plain(e, 'errWrongLogin');
      if (err.key === 'errWrongLogin' && Number.isInteger(started.attempts_left)) err.left = started.attempts_left;
      throw err;
    }
    const done = await request('POST', '/v1/login/finish', {
      body: { login_id: started.login_id, login_finalization: b64(result.finalization), shared_computer: shared },
    });
    try {
      identity = result.openBundle(unb64(done.bundle), done.account.id);
    } catch (e) {
      throw plain(e, 'errWrongLogin');
    }
    setToken(done.token);
    account = done.account;
    if (done.device_token) await devices.put(handle, done.device_token);
    return account;
  } finally {
    attempt.free();
    result?.free();
  }
}

/** Logs out: the session is revoked (if the server is reachable) and keys are wiped. */
export async function logout({ keepalive = false, forget = true } = {}) {
  const had = account !== null;
  identity?.free();
  identity = null;
  account = null;
  // Only when someone was logged in: login() starts with a logout, which must not drop
  // an upload that waits for this very login after an expired session.
  if (had) for (const f of leaving) f(forget);
  if (had) {
    try {
      await request('POST', '/v1/logout', { keepalive });
    } catch {
      // offline: the token is forgotten anyway and expires on the server
    }
  }
  setToken(null);
}

/**
 * The size of the original file from its age payload's size: a 16-byte nonce, then
 * chunks of up to 64 KiB each followed by a 16-byte tag (at least one chunk).
 */
export function plainSize(payload) {
  const chunks = Math.max(1, Math.ceil((payload - 16) / (65536 + 16)));
  return Math.max(0, payload - 16 - 16 * chunks);
}

/** Opens the sealed metadata of documents as the server lists them (own or shared). */
function openAll(docs) {
  const out = [];
  for (const doc of docs) {
    if (!doc.committed || !doc.envelope) continue;
    let env = null;
    let meta = null;
    const base = { id: doc.id, owner: doc.owner, ownerHandle: doc.owner_handle ?? null, size: plainSize(doc.size), envelope: doc.envelope, createdAt: doc.committed_at ?? doc.created_at, expiresAt: doc.expires_at ?? null };
    try {
      env = Envelope.parse(unb64(doc.envelope));
      meta = env.openMetadata(identity, unb64(doc.metadata));
      out.push({
        ...base,
        name: meta.name,
        mimeType: meta.mimeType,
        category: CATEGORIES.includes(meta.category) ? meta.category : 'other',
      });
    } catch {
      out.push({ ...base, broken: true, name: '?', mimeType: 'application/octet-stream', category: 'other' });
    } finally {
      meta?.free();
      env?.free();
    }
  }
  return out;
}

/** The caller's committed documents, metadata opened in the page. */
export async function listDocuments() {
  return openAll(await request('GET', '/v1/documents'));
}

/** Documents others shared with the caller (story 6), metadata opened in the page. */
export async function listShared() {
  return openAll(await request('GET', '/v1/shared')).map((d) => ({ ...d, shared: true }));
}

/** Problem types of a document that went away or is no longer shared. */
export const GONE = { 'not-found': 'errNoLongerThere', forbidden: 'errNoLongerThere' };

/** Story 5: deletes a document for good (the server removes its bytes). */
export async function deleteDocument(doc) {
  await request('DELETE', `/v1/documents/${doc.id}`, { problems: GONE });
}

/**
 * Emoji, words and a number anyone can read aloud to compare a public key face to face
 * (the indices pick the emoji names and words of the page's language, safety.js).
 */
export function fingerprintOf(holder) {
  const fp = holder.fingerprint();
  try {
    return { words: fp.words, wordIndices: [...fp.wordIndices], emoji: fp.emoji, emojiIndices: [...fp.emojiIndices], number: fp.number };
  } finally {
    fp.free();
  }
}

/** The logged-in account's own fingerprint (shown by a worker to whoever shares). */
export function myFingerprint() {
  return fingerprintOf(identity);
}

/** Finds an account by its handle: { id, handle, publicKey, words, number }. */
export async function findAccount(handle) {
  const found = await request('GET', `/v1/keys/${encodeURIComponent(handle)}`, {
    problems: { 'not-found': 'errNoSuchAccount' },
  });
  let r = null;
  try {
    r = Recipient.parse(found.public_key);
    return { id: found.id, handle: found.handle, publicKey: found.public_key, ...fingerprintOf(r) };
  } catch (e) {
    throw plain(e);
  } finally {
    r?.free();
  }
}

/** Wraps the document's key for `recipient` (age1…) from the caller's own envelope. */
function rewrap(doc, recipient) {
  let env = null;
  let out = null;
  try {
    env = Envelope.parse(unb64(doc.envelope));
    out = env.rewrap(identity, recipient);
    return out.toBytes();
  } catch (e) {
    throw plain(e);
  } finally {
    out?.free();
    env?.free();
  }
}

/** Story 6: shares a document with an account whose fingerprint was checked. */
export async function shareWith(doc, who, expiresAt) {
  await request('PUT', `/v1/documents/${doc.id}/envelopes/${who.id}`, {
    body: { envelope: b64(rewrap(doc, who.publicKey)), expires_at: expiresAt },
  });
}

/** Who a document is shared with (not its owner) and its links. */
export async function sharesOf(doc) {
  const [shares, links] = await Promise.all([
    request('GET', `/v1/documents/${doc.id}/envelopes`),
    request('GET', `/v1/documents/${doc.id}/links`),
  ]);
  return { shares: shares.filter((s) => s.recipient !== account.id), links };
}

/** Story 6: stops sharing a document with `recipient` (its envelope is deleted). */
export async function revokeShare(doc, recipient) {
  await request('DELETE', `/v1/documents/${doc.id}/envelopes/${recipient}`, { problems: GONE });
}

/**
 * Story 7: a link for someone without an account. A fresh key pair: the document's key
 * is wrapped to its public half on the server, its secret half goes only in the URL's
 * fragment (never sent to the server). Returns { id, url }.
 */
export async function createLink(doc, expiresAt, maxDownloads) {
  const key = Identity.generate();
  try {
    const link = await request('POST', `/v1/documents/${doc.id}/links`, {
      body: { envelope: b64(rewrap(doc, key.recipient())), expires_at: expiresAt, max_downloads: maxDownloads },
    });
    return { ...link, url: `${location.origin}/#/link/${link.id}/${key.toString()}` };
  } finally {
    key.free();
  }
}

export async function deleteLink(id) {
  await request('DELETE', `/v1/links/${id}`, { problems: GONE });
}

/**
 * Story 8: a new passphrase or PIN. OPAQUE registration again, the same identity sealed
 * under the new export key; the server swaps both at once and signs out other devices.
 */
export async function changeSecret(secret) {
  const reg = Registration.start(secret);
  let result = null;
  try {
    const started = await request('POST', '/v1/me/passphrase/start', {
      body: { registration_request: b64(reg.request) },
    });
    await paint();
    let bundle;
    try {
      result = reg.finish(unb64(started.registration_response), started.ksf_version);
      bundle = result.sealIdentity(identity, account.id);
    } catch (e) {
      throw plain(e);
    }
    await request('POST', '/v1/me/passphrase', {
      body: { registration_upload: b64(result.upload), bundle: b64(bundle) },
    });
  } finally {
    reg.free();
    result?.free();
  }
}

/**
 * Story 8: the printed recovery code opens the vault when the secret is forgotten: it
 * proves itself to the server, opens the recovery bundle here, and a new secret is
 * registered. Then logs in with the new secret.
 */
export async function recover(handle, codeText, secret) {
  await logout();
  let code;
  try {
    code = RecoveryCode.parse(codeText);
  } catch (e) {
    throw plain(e, 'errRecoveryCode');
  }
  const reg = Registration.start(secret);
  let result = null;
  let me = null;
  try {
    const { account_id: id } = await request('POST', '/v1/recovery/lookup', { body: { handle } });
    const token = b64(code.authToken(id));
    const wrong = { 'invalid-login': 'errRecoveryWrong' };
    const started = await request('POST', '/v1/recovery/start', {
      body: { handle, recovery_token: token, registration_request: b64(reg.request) },
      problems: wrong,
    });
    await paint();
    let bundle;
    try {
      me = code.openBundle(unb64(started.recovery_bundle ?? ''), id);
      result = reg.finish(unb64(started.registration_response), started.ksf_version);
      bundle = result.sealIdentity(me, id);
    } catch (e) {
      throw plain(e, 'errRecoveryWrong');
    }
    await request('POST', '/v1/recovery/finish', {
      body: { handle, recovery_token: token, registration_upload: b64(result.upload), bundle: b64(bundle) },
      problems: wrong,
    });
  } finally {
    code.free();
    reg.free();
    result?.free();
    me?.free();
  }
  return login(handle, secret);
}

/** Story 8: a worker unlocks an account of their organisation locked by wrong tries. */
export async function unlockAccount(handle) {
  const found = await request('GET', `/v1/keys/${encodeURIComponent(handle)}`, {
    problems: { 'not-found': 'errNoSuchAccount' },
  });
  await request('POST', `/v1/accounts/${found.id}/unlock`, { problems: { forbidden: 'errOtherOrg' } });
  return found.handle;
}
