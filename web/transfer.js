// A document's bytes on the way up and down, with progress by bytes. Loaded with the
// vault's screens (screens.js), not on the first screen.
//
// Upload: encrypted in a Web Worker, then sent piece by piece with XMLHttpRequest, whose
// upload events count what actually left the device (fetch cannot). A piece's size
// follows the measured link: 64 KiB to begin with, then what the last piece's speed
// sends in about PIECE_SECONDS, up to 4 MiB; a cut connection costs at most one piece.
// When the network goes, the upload waits for it and goes on by itself (backoff, then
// the `online` event); it stops only for a refusal or an expired session, and then
// calling again with the same file resumes it from the server's stored offset.
// Download: the answer is read as a stream and counted against the payload's size.

import { Encryptor, Envelope, Metadata, CoffreError, decryptStream } from '/pkg/index.js';
import { CoffreWorker } from '/pkg/worker-client.js';
import { ApiError, request, authorization, problemError, b64, unb64, isShared } from './api.js';
import { withIdentity, currentAccount, plain, onLogout, GONE } from './vault.js';

export const MIN_PIECE = 64 << 10;
export const MAX_PIECE = 4 << 20;
const PIECE_SECONDS = 4;

/** The next piece's size after `bytes` were sent in `seconds`: a multiple of 64 KiB. */
export function nextPieceSize(bytes, seconds) {
  const rate = bytes / Math.max(seconds, 0.001);
  const size = Math.floor((rate * PIECE_SECONDS) / MIN_PIECE) * MIN_PIECE;
  return Math.min(MAX_PIECE, Math.max(MIN_PIECE, size));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolves when the browser says it is online again, or after `ms` at most. */
const backOnline = (ms) =>
  new Promise((r) => {
    const done = () => {
      clearTimeout(timer);
      removeEventListener('online', done);
      r();
    };
    const timer = setTimeout(done, ms);
    addEventListener('online', done);
  });

/**
 * PATCHes one piece; `onSent(bytes)` as the browser hands them to the network. Resolves
 * with the server's answer ({ stored }); rejects with an ApiError like `request`.
 */
function sendPiece(path, blob, problems, onSent) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PATCH', path);
    const auth = authorization();
    if (auth) xhr.setRequestHeader('authorization', auth);
    xhr.setRequestHeader('content-type', 'application/octet-stream');
    xhr.upload.onprogress = (e) => onSent(e.loaded);
    xhr.onload = () => {
      if (xhr.status < 200 || xhr.status > 299) return reject(problemError(xhr.status, xhr.responseText, problems));
      try {
        resolve(JSON.parse(xhr.responseText));
      } catch {
        reject(new ApiError('errNetwork', xhr.status));
      }
    };
    xhr.onerror = xhr.onabort = xhr.ontimeout = () => reject(new ApiError('errNetwork'));
    xhr.send(blob);
  });
}

/** Bytes of a Blob through an in-page Encryptor (when module workers are missing). */
async function encryptHere(enc, blob, onProgress) {
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
    await sleep(0); // keep the page responsive
  }
  parts.push(enc.finish());
  return new Blob(parts);
}

let worker = null; // one CoffreWorker for the session's uploads

/**
 * Encrypts `file` to the account's own key in a Web Worker, so the page stays responsive
 * on a large file; returns { envelope, sealed, payload } with the metadata sealed under
 * the same file key. Falls back to the page if module workers are unavailable.
 */
async function encryptFile(identity, file, meta, onProgress) {
  const recipient = identity.recipient();
  let encrypted = null;
  try {
    worker ??= new CoffreWorker('/pkg/worker.js');
    let done = 0;
    const counted = file.stream().pipeThrough(
      new TransformStream({
        transform(chunk, controller) {
          done += chunk.length;
          onProgress?.(done / Math.max(file.size, 1));
          controller.enqueue(chunk);
        },
      }),
    );
    encrypted = await new Response(worker.encryptStream(counted, [recipient])).blob();
  } catch (e) {
    if (e instanceof CoffreError && e.code !== 'INTERNAL') throw plain(e);
    worker?.terminate();
    worker = null;
  }
  if (encrypted === null) {
    let enc = null;
    try {
      enc = Encryptor.detached([recipient]);
      const [envelope] = enc.envelopes();
      const sealed = enc.sealMetadata(meta);
      return { envelope, sealed, payload: await encryptHere(enc, file, onProgress) };
    } finally {
      enc?.free();
    }
  }
  // A one-recipient header is a few hundred bytes: read it from the start of the file.
  const env = Envelope.split(new Uint8Array(await encrypted.slice(0, 4096).arrayBuffer()));
  try {
    return { envelope: env.toBytes(), sealed: env.sealMetadata(identity, meta), payload: encrypted.slice(env.byteLength) };
  } finally {
    env.free();
  }
}

// ------------------------------------------------------------ uploads kept across a reload
// Once the server has given the document its id, the upload is kept in IndexedDB (never
// on a shared computer): the payload, the sealed metadata and the envelope — ciphertext
// only, nothing the page could not fetch back from the server — with the account id.
// After a reload and a login, the vault asks "finish sending <name>?" (the name opened
// from the sealed metadata with the identity). Committed or abandoned uploads are
// forgotten.

const DB_NAME = 'coffre-uploads';

function openDb() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore('uploads', { keyPath: 'id' });
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/** One transaction on the `uploads` store; resolves with what `f`'s request gave. */
async function onStore(mode, f) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction('uploads', mode);
      const req = f(tx.objectStore('uploads'));
      tx.oncomplete = () => resolve(req?.result);
      tx.onerror = tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

// Never on a shared computer; without IndexedDB (private windows of some browsers) the
// upload simply is not kept.
const keepUpload = (record) => (isShared() ? null : onStore('readwrite', (st) => st.put(record)).catch(() => {}));
const dropUpload = (id) => (isShared() ? null : onStore('readwrite', (st) => st.delete(id)).catch(() => {}));
const keptUploads = async () => (isShared() ? [] : (await onStore('readonly', (st) => st.getAll()).catch(() => [])) ?? []);

/**
 * The uploads of the logged-in account that a reload interrupted, still open on the
 * server: [{ id, name, stored, size }]. The others (committed, deleted) are forgotten.
 */
export async function waitingUploads() {
  const account = currentAccount()?.id;
  const out = [];
  for (const rec of await keptUploads()) {
    if (rec.account !== account || pending?.id === rec.id) continue;
    let status;
    try {
      status = await request('GET', `/v1/documents/${rec.id}/upload`, { problems: GONE });
    } catch (e) {
      if (e.key === 'errNoLongerThere') await dropUpload(rec.id);
      continue;
    }
    if (status.committed) {
      await dropUpload(rec.id);
      continue;
    }
    let name = '?';
    try {
      name = withIdentity((identity) => {
        const env = Envelope.parse(rec.envelope);
        try {
          const meta = env.openMetadata(identity, rec.sealed);
          try {
            return meta.name;
          } finally {
            meta.free();
          }
        } finally {
          env.free();
        }
      });
    } catch {
      // not this identity's (cannot happen for its own upload): shown as "?"
    }
    out.push({ id: rec.id, name, stored: status.stored, size: rec.size });
  }
  return out;
}

/** "Finish sending": the kept upload `id` goes on from the server's stored offset. */
export async function finishKept(id, onStep) {
  const rec = (await keptUploads()).find((r) => r.id === id && r.account === currentAccount()?.id);
  if (!rec) throw new ApiError('errNoLongerThere');
  pending = { key: `kept:${id}`, id, payload: rec.payload, stored: 0, account: rec.account };
  return send(onStep);
}

/** "Do not send": the document the server holds half of is deleted, and forgotten here. */
export async function abandonKept(id) {
  try {
    await request('DELETE', `/v1/documents/${id}`, { problems: GONE });
  } catch (e) {
    if (e.key !== 'errNoLongerThere') throw e;
  }
  await dropUpload(id);
}

/** An upload stopped by a refusal or an expired session, kept so that "Save" again resumes it. */
let pending = null;
/** Papers opened in this session, decrypted, by document id (memory only). */
const opened = new Map();

onLogout((forget) => {
  opened.clear();
  if (!forget) return; // an expired session: the upload (ciphertext) waits for the same account
  pending = null;
  worker?.terminate();
  worker = null;
});

const fileKey = (file, name, category) => [file.name, file.size, file.lastModified, name, category].join('\u0000');

/** Whether an upload of this very file and choices is waiting to be resumed. */
export const isPending = (file, name, category) => pending?.key === fileKey(file, name, category);

const PIECE_PROBLEMS = { 'offset-mismatch': 'errOffset', 'already-committed': 'errOffset', 'upload-busy': 'errOffset' };

/**
 * Story 4: encrypts `file` for the logged-in account and uploads it with its sealed
 * metadata. `onStep(step, done, total)`: 'locking' (bytes read of the file), 'sending'
 * (bytes the server holds plus those on the way), 'waiting' (no network: it goes on
 * by itself when the network is back). Returns the document id once committed.
 */
export async function uploadDocument(file, name, category, onStep) {
  const key = fileKey(file, name, category);
  const account = currentAccount();
  if (pending?.key !== key || pending.account !== account?.id) {
    pending = null;
    const encrypted = await withIdentity(async (identity) => {
      let meta = null;
      try {
        meta = new Metadata(name, file.type || 'application/octet-stream', category);
        onStep?.('locking', 0, file.size);
        return await encryptFile(identity, file, meta, (f) => onStep?.('locking', Math.round(f * file.size), file.size));
      } catch (e) {
        throw plain(e);
      } finally {
        meta?.free();
      }
    });
    onStep?.('sending', 0, encrypted.payload.size);
    const doc = await request('POST', '/v1/documents', {
      body: { metadata: b64(encrypted.sealed), size: encrypted.payload.size, envelope: b64(encrypted.envelope) },
    });
    pending = { key, id: doc.id, payload: encrypted.payload, stored: 0, account: account?.id };
    await keepUpload({ id: doc.id, account: account?.id, payload: encrypted.payload, size: encrypted.payload.size, sealed: encrypted.sealed, envelope: encrypted.envelope });
    return send(onStep, true);
  }
  return send(onStep);
}

/** Sends `pending` from the server's stored offset (unless `fresh`: from 0), commits. */
async function send(onStep, fresh = false) {
  if (!fresh) {
    onStep?.('sending', pending.stored, pending.payload.size);
    pending.stored = (await request('GET', `/v1/documents/${pending.id}/upload`)).stored;
  }
  const { id, payload } = pending;
  let piece = MIN_PIECE;
  let failures = 0;
  while (pending.stored < payload.size) {
    const from = pending.stored;
    const body = payload.slice(from, Math.min(payload.size, from + piece));
    const started = performance.now();
    try {
      onStep?.('sending', from, payload.size);
      const status = await sendPiece(`/v1/documents/${id}/payload?offset=${from}`, body, PIECE_PROBLEMS, (sent) =>
        onStep?.('sending', Math.min(payload.size, from + sent), payload.size),
      );
      pending.stored = status.stored;
      piece = nextPieceSize(status.stored - from, (performance.now() - started) / 1000);
      failures = 0;
    } catch (e) {
      if (e.key !== 'errNetwork' && e.key !== 'errOffset') throw e;
      if (e.key === 'errNetwork') {
        failures += 1;
        piece = MIN_PIECE;
        // A few quick tries, then wait for the network (or a minute at most) and go on.
        if (failures > 3 || !navigator.onLine) onStep?.('waiting', from, payload.size);
        await (failures > 3 || !navigator.onLine ? backOnline(60_000) : sleep(500 * 2 ** failures));
      }
      try {
        pending.stored = (await request('GET', `/v1/documents/${id}/upload`)).stored;
      } catch (again) {
        if (again.key !== 'errNetwork') throw again;
      }
    }
  }
  onStep?.('sending', payload.size, payload.size);
  try {
    await request('POST', `/v1/documents/${id}/commit`, { problems: { 'upload-incomplete': 'errOffset', 'already-committed': 'errOffset' } });
  } catch (e) {
    // A commit whose answer was lost to a cut connection: already done is done.
    if (e.key !== 'errOffset' || !(await request('GET', `/v1/documents/${id}`)).committed) throw e;
  }
  pending = null;
  await dropUpload(id);
  return id;
}

/** Reads an answer's body as a Blob; `onReceived(bytes, total)` as pieces arrive. */
async function receive(response, total, onReceived) {
  if (!response.body) return response.blob();
  const reader = response.body.getReader();
  const parts = [];
  let got = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    parts.push(value);
    got += value.length;
    onReceived?.(Math.min(got, total), total);
  }
  return new Blob(parts);
}

/**
 * Stories 5 and 6: downloads and decrypts a document (own or shared); a Blob. A paper
 * opened once in the session is kept in memory and not downloaded again (forgotten at
 * logout and at lock). `onReceived(bytes, total)` while downloading.
 */
export async function openDocument(doc, onReceived) {
  const kept = opened.get(doc.id);
  // Only for the same account (another may log in here after an expired session).
  const who = currentAccount()?.id;
  if (kept && kept.envelope === doc.envelope && kept.who === who) return kept.blob;
  const response = await request('GET', `/v1/documents/${doc.id}/payload`, { raw: true, problems: GONE });
  const payload = await receive(response, doc.size, onReceived);
  const file = new Blob([unb64(doc.envelope), payload]);
  let blob;
  try {
    blob = await withIdentity(async (identity) => new Blob([await new Response(decryptStream(file.stream(), [identity])).blob()], { type: doc.mimeType }));
  } catch (e) {
    throw plain(e);
  }
  opened.set(doc.id, { envelope: doc.envelope, who, blob });
  return blob;
}

/** Forgets a paper kept in memory (deleted, or no longer shared). */
export const forget = (id) => void opened.delete(id);
