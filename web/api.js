// The Coffre HTTP API as the web app uses it. Every failure becomes an ApiError whose
// `key` names a plain-words message in i18n/*.js; the server's text never reaches the
// screen (it is English and technical).

/** A failed request, with the i18n key of the message to show. */
export class ApiError extends Error {
  constructor(key, status = 0, type = '', retryAfter = null) {
    super(key);
    this.name = 'ApiError';
    this.key = key;
    this.status = status;
    this.type = type;
    // Seconds to wait before trying again, when the server said (a spent login budget).
    this.retryAfter = retryAfter;
  }
}

// Problem `type` slugs (RFC 9457 bodies) → messages. Anything else falls back by status.
const PROBLEMS = {
  'invalid-login': 'errWrongLogin',
  'login-throttled': 'errThrottled',
  'account-disabled': 'errAccountDisabled',
  'too-many-requests': 'errTooManyRequests',
  'too-many-lookups': 'errTooManyRequests',
  'unauthorized': 'errSession',
  'forbidden': 'errNotAllowed',
  'handle-taken': 'errHandleTaken',
  'payload-too-large': 'errTooLarge',
  'quota-exceeded': 'errQuota',
  // The store is unreachable for a moment: the same as a cut connection (uploads resume).
  'unavailable': 'errNetwork',
};

// Shared-computer mode (docs/web.md): no localStorage, `memory` instead.
let shared = false;
const memory = new Map();
export const setShared = (on) => void (shared = on);
export const isShared = () => shared;
export const forgetMemory = () => memory.clear();
const tryLs = (f) => {
  try {
    return f(localStorage);
  } catch {
    return null; // disabled
  }
};
/** localStorage, or in shared-computer mode this page's memory. */
export const local = {
  get: (k) => (shared ? memory.get(k) ?? null : tryLs((ls) => ls.getItem(k))),
  set: (k, v) => void (shared ? memory.set(k, v) : tryLs((ls) => ls.setItem(k, v))),
  remove: (k) => void (memory.delete(k), shared || tryLs((ls) => ls.removeItem(k))),
};

/**
 * Small memories of this device in localStorage, per handle (the kind of secret, the
 * device credential): each under a digest of the handle, never the handle itself, so a
 * shared computer does not list who used Coffre on it; five at most. Without storage or
 * WebCrypto (plain HTTP) nothing is remembered.
 */
export function remembered(name) {
  const key = `coffre.${name}`;
  const all = () => JSON.parse(local.get(key) ?? '{}') ?? {};
  const slot = async (handle) => {
    const d = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(`coffre/${name}/${handle}`));
    return [...new Uint8Array(d, 0, 8)].map((b) => b.toString(16).padStart(2, '0')).join('');
  };
  return {
    async get(handle) {
      try {
        return all()[await slot(handle)] ?? null;
      } catch {
        return null;
      }
    },
    async put(handle, value) {
      try {
        const s = await slot(handle);
        const kept = Object.entries(all()).filter(([k]) => k !== s).slice(-4);
        local.set(key, JSON.stringify(Object.fromEntries([...kept, [s, value]])));
      } catch {
        // not remembered
      }
    },
  };
}

let token = null;

/** Remembers the session token, in memory only (a reload or a closed tab logs out). */
export function setToken(value) {
  token = value;
}

export function hasToken() {
  return token !== null;
}

/** Standard base64 of bytes (the API's encoding of binary JSON fields). */
export function b64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/** Bytes of a standard base64 string. */
export function unb64(text) {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/**
 * One request. `body`: a plain object (sent as JSON), or a Blob/stream (sent raw).
 * Returns the parsed JSON, the Response itself when `raw`, or null for 204.
 */
export async function request(method, path, { body, raw = false, problems = {}, keepalive = false } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  let payload;
  if (body instanceof Blob) {
    payload = body;
    headers['content-type'] = 'application/octet-stream';
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers['content-type'] = 'application/json';
  }
  let response;
  try {
    // keepalive: outlives a closing tab (token still in the header)
    response = await fetch(path, { method, headers, body: payload, cache: 'no-store', keepalive });
  } catch {
    throw new ApiError('errNetwork');
  }
  if (!response.ok) throw problemError(response.status, await response.text().catch(() => ''), problems);
  if (raw) return response;
  if (response.status === 204) return null;
  try {
    return await response.json();
  } catch {
    throw new ApiError('errNetwork', response.status);
  }
}

/** The `authorization` header of the session, or null (transfer.js sends with XHR). */
export const authorization = () => token && `Bearer ${token}`;

/** The ApiError of a failed answer: its status and body (a problem document, or not). */
export function problemError(status, text, problems = {}) {
  let type = '';
  let retryAfter = null;
  try {
    const problem = JSON.parse(text);
    type = String(problem.type ?? '').split('/').pop();
    if (Number.isInteger(problem.retry_after)) retryAfter = problem.retry_after;
  } catch {
    // not a problem document (a proxy's error page): decide by status below
  }
  const key =
    problems[type] ??
    PROBLEMS[type] ??
    (status >= 500 ? 'errServer' : status === 0 ? 'errNetwork' : 'errUnknown');
  return new ApiError(key, status, type, retryAfter);
}
