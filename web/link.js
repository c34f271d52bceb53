// Story 7, the visitor's side: a link opened by someone without an account. Loaded with
// the link screen only. Nothing is counted until the paper is fetched, and only after the
// key in the URL proved whole (its checksum) and able to open the envelope.

import { Identity, Envelope, decryptStream } from '/pkg/index.js';
import { ApiError, request, unb64 } from './api.js';
import { CATEGORIES, plainSize } from './vault.js';

const plain = (e, fallback) => (e instanceof ApiError ? e : new ApiError(fallback));

const LINK_PROBLEMS = { gone: 'errLinkGone', 'not-found': 'errLinkMissing' };

/**
 * Whether a link's key is whole: its bech32 checksum holds. A link cut short (a message
 * that wrapped, a copy that missed its end) fails here, before any request, so it uses
 * nothing.
 */
export function linkKeyIsWhole(secret) {
  try {
    Identity.parse(secret).free();
    return true;
  } catch {
    return false;
  }
}

// The grant id this tab chose for a link, kept for the tab (sessionStorage) so that a
// reload, or a retry after a lost answer, asks again with the same id: the server hands
// the same grant back, uncounted, for ten minutes after counting it (LINK_REUSE_SECONDS).
// It is not a key: it only spares an opening to whoever also holds the link.
const grantSlot = (id) => `coffre.link-grant.${id}`;
function keptGrant(id) {
  try {
    return sessionStorage.getItem(grantSlot(id));
  } catch {
    return null;
  }
}
function grantFor(id) {
  let grant = keptGrant(id);
  if (!grant) {
    const raw = crypto.getRandomValues(new Uint8Array(16));
    grant = btoa(String.fromCharCode(...raw)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    try {
      sessionStorage.setItem(grantSlot(id), grant);
    } catch {
      // no sessionStorage: a reload counts again, nothing worse
    }
  }
  return grant;
}

/**
 * Story 7, the visitor's side: shows a link without counting anything. The key in the URL
 * must be whole and must open the envelope (it unwraps the file key, which opens the
 * metadata) before anything is counted; `linkDocument` counts.
 */
export async function openLink(id, secret) {
  if (!linkKeyIsWhole(secret)) throw new ApiError('errLinkCut');
  const kept = keptGrant(id);
  const query = kept ? `?grant=${encodeURIComponent(kept)}` : '';
  const opened = await request('GET', `/v1/links/${id}${query}`, { problems: LINK_PROBLEMS });
  let env = null;
  let meta = null;
  try {
    env = Envelope.parse(unb64(opened.envelope));
    meta = env.openMetadataWithStrings([secret], unb64(opened.metadata));
    return {
      id,
      envelope: opened.envelope,
      size: plainSize(opened.size),
      name: meta.name,
      mimeType: meta.mimeType,
      category: CATEGORIES.includes(meta.category) ? meta.category : 'other',
      expiresAt: opened.expires_at,
      downloadsLeft: opened.downloads_left,
    };
  } catch (e) {
    throw plain(e, 'errLinkKey');
  } finally {
    meta?.free();
    env?.free();
  }
}

/**
 * The document behind a checked link, decrypted with the key from the URL. Asks for this
 * tab's grant (one opening the first time, none on a reload within ten minutes), then
 * fetches the payload with it; `onLeft` gets the openings left.
 */
export async function linkDocument(opened, secret, onLeft = () => {}) {
  const granted = await request('POST', `/v1/links/${opened.id}/grants`, { body: { grant: grantFor(opened.id) }, problems: LINK_PROBLEMS });
  onLeft(granted.downloads_left);
  const token = encodeURIComponent(granted.download_token);
  const response = await request('GET', `/v1/links/${opened.id}/payload?grant=${token}`, { raw: true, problems: LINK_PROBLEMS });
  const file = new Blob([unb64(opened.envelope), await response.blob()]);
  try {
    const clear = decryptStream(file.stream(), [secret]);
    return new Blob([await new Response(clear).blob()], { type: opened.mimeType });
  } catch (e) {
    throw plain(e, 'errLinkKey');
  }
}

