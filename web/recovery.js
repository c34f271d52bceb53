// Recovery through referents, in the page: choosing referents (the shares are dealt
// here), a new recovery kit, asking for recovery on a new device, approving as a
// referent, and finishing. Every secret stays in wasm objects or in this browser; the
// server gets age files, commitments and a sealed bundle it cannot open.
// Loaded with screens.js, never on the first screen.

import {
  Registration,
  RecoveryCode,
  RecoverySecret,
  ShareCollector,
  Identity,
  Recipient,
  CoffreError,
  decrypt,
  reshareForRequest,
} from '/pkg/index.js';
import { ApiError, request, b64, unb64, local } from './api.js';
import * as vault from './vault.js';

/** Where the asking device keeps its request between visits (the delay lasts days). */
const PENDING_KEY = 'coffre.recovery';

const plain = (e, key) => (e instanceof ApiError ? e : new ApiError(key));

/** Emoji, words and number of an age1… key, to compare face to face. */
export function fingerprintOfKey(publicKey) {
  let r = null;
  try {
    r = Recipient.parse(publicKey);
    return vault.fingerprintOf(r);
  } finally {
    r?.free();
  }
}

/** The person's referents: { threshold, referents: [{id, handle, org_name, active}], delay_seconds }. */
export function myReferents() {
  return request('GET', '/v1/me/referents');
}

/**
 * Deals shares of a fresh recovery secret to `referents` ([{id, publicKey}], each checked
 * with the safety words), `threshold` of them needed. Replaces any earlier deal.
 */
export async function chooseReferents(referents, threshold) {
  const me = vault.currentAccount();
  const secret = RecoverySecret.generate();
  let dealt = null;
  try {
    dealt = secret.deal(threshold, referents.map((r) => r.publicKey), me.id);
    const shares = referents.map((r, i) => ({
      referent: r.id,
      index: dealt.index(i),
      sealed_share: b64(dealt.sealedShare(i)),
      commitment: b64(dealt.commitment(i)),
    }));
    return await request('PUT', '/v1/me/referents', {
      body: {
        threshold,
        shares,
        bundle: b64(vault.withIdentity((id) => secret.sealIdentity(id, me.id))),
        verifier: b64(secret.verifier(me.id)),
      },
    });
  } catch (e) {
    throw plain(e, 'errCrypto');
  } finally {
    dealt?.free();
    secret.free();
  }
}

export async function removeReferents() {
  await request('DELETE', '/v1/me/referents');
}

/** Requests about the person's vault (newest first). */
export async function myRecoveryRequests() {
  return (await request('GET', '/v1/me/recovery')).requests;
}

export async function cancelMyRecovery(id) {
  await request('POST', `/v1/me/recovery/${id}/cancel`, { problems: { 'recovery-closed': 'errRecoveryClosed' } });
}

/** A new recovery kit: a new code, the old one stops working. Returns the code's text. */
export async function newKit() {
  const me = vault.currentAccount();
  const code = RecoveryCode.generate();
  try {
    await request('POST', '/v1/me/recovery-kit', {
      body: {
        recovery_bundle: b64(vault.withIdentity((id) => code.sealIdentity(id, me.id))),
        recovery_verifier: b64(code.verifier(me.id)),
      },
    });
    return code.toString();
  } finally {
    code.free();
  }
}

// ---------------------------------------------------------------- the asking device

/** The request this device is waiting on, if any: { handle, id, accountId, proof, secret }. */
export function pendingRequest() {
  try {
    const v = JSON.parse(local.get(PENDING_KEY) ?? 'null');
    return v && typeof v.id === 'string' ? v : null;
  } catch {
    return null;
  }
}

export function forgetRequest() {
  local.remove(PENDING_KEY);
}

/**
 * "I lost my PIN and my paper": a fresh key pair for this device, a request for `handle`.
 * Returns the pending request with the words to show the referents.
 */
export async function askRecovery(handle) {
  await vault.logout();
  const ephemeral = Identity.generate();
  try {
    const made = await request('POST', '/v1/recovery/requests', {
      body: { handle, ephemeral_key: ephemeral.recipient() },
      problems: { 'recovery-pending': 'errRecoveryPending' },
    });
    let proof;
    try {
      proof = b64(decrypt(unb64(made.challenge), [ephemeral]));
    } catch (e) {
      throw plain(e, 'errCrypto');
    }
    const pending = { handle, id: made.id, accountId: made.account_id, proof, secret: ephemeral.toString(), key: ephemeral.recipient(), at: made.request.created_at };
    // On a shared computer (or in private mode) it lives as long as this page.
    local.set(PENDING_KEY, JSON.stringify(pending));
    return pending;
  } finally {
    ephemeral.free();
  }
}

/** Where the device's request stands: { state, approvals, releasable_at, … }. */
export function requestStatus(pending) {
  return request('GET', `/v1/recovery/requests/${pending.id}`, { problems: { 'not-found': 'errRecoveryClosed' } });
}

export async function abandonRequest(pending) {
  try {
    await request('POST', `/v1/recovery/requests/${pending.id}/cancel`, { body: { proof: pending.proof } });
  } catch {
    // closed already: nothing to give up
  }
  forgetRequest();
}

/**
 * After the delay: the released shares are opened with this device's key and checked
 * against their commitments; `threshold` good ones rebuild the secret, which opens the
 * identity; a new secret, a new kit and new shares are set in one step. Throws with
 * `wrong` = handles of referents whose share was wrong when fewer than k good remain.
 * Returns { code, wrong } and leaves the person logged in.
 */
export async function finishRecovery(pending, newSecret) {
  const ephemeral = Identity.parse(pending.secret);
  const reg = Registration.start(newSecret);
  const collector = new ShareCollector(pending.accountId);
  let result = null;
  let secret = null;
  let me = null;
  let code = null;
  let nextSecret = null;
  let dealt = null;
  const wrong = [];
  try {
    const released = await request('POST', `/v1/recovery/requests/${pending.id}/release`, {
      body: { proof: pending.proof, registration_request: b64(reg.request) },
      problems: { 'recovery-waiting': 'errRecoveryWaiting', 'recovery-closed': 'errRecoveryClosed', forbidden: 'errRecoveryClosed' },
    });
    for (const s of released.shares) {
      try {
        collector.add(ephemeral, unb64(s.sealed_share), unb64(s.commitment));
      } catch {
        wrong.push(s.referent_handle ?? '?');
      }
    }
    try {
      secret = collector.rebuild();
      me = secret.openBundle(unb64(released.bundle), pending.accountId);
    } catch (e) {
      const err = new ApiError(wrong.length ? 'errRecoveryWrongShare' : 'errCrypto');
      err.wrong = wrong;
      throw err;
    }
    const id = pending.accountId;
    result = reg.finish(unb64(released.registration_response), released.ksf_version);
    code = RecoveryCode.generate();
    // New shares under a new secret, to the same referents: the released ones open nothing.
    const targets = released.referents;
    let deal = null;
    if (targets.length) {
      nextSecret = RecoverySecret.generate();
      const k = Math.min(released.threshold, targets.length);
      dealt = nextSecret.deal(k, targets.map((r) => r.public_key), id);
      deal = {
        threshold: k,
        shares: targets.map((r, i) => ({ referent: r.id, index: dealt.index(i), sealed_share: b64(dealt.sealedShare(i)), commitment: b64(dealt.commitment(i)) })),
        bundle: b64(nextSecret.sealIdentity(me, id)),
        verifier: b64(nextSecret.verifier(id)),
      };
    }
    await request('POST', `/v1/recovery/requests/${pending.id}/finish`, {
      body: {
        proof: pending.proof,
        secret_token: b64(secret.authToken(id)),
        registration_upload: b64(result.upload),
        bundle: b64(result.sealIdentity(me, id)),
        recovery_bundle: b64(code.sealIdentity(me, id)),
        recovery_verifier: b64(code.verifier(id)),
        deal,
      },
      problems: { 'recovery-closed': 'errRecoveryClosed', 'recovery-waiting': 'errRecoveryWaiting' },
    });
    forgetRequest();
    const text = code.toString();
    try {
      await vault.login(pending.handle, newSecret);
    } catch {
      // The vault is recovered whatever happens here: the new kit must still be shown;
      // the person logs in with the new secret afterwards.
    }
    return { code: text, wrong };
  } catch (e) {
    if (e instanceof CoffreError) throw plain(e, 'errCrypto');
    throw e;
  } finally {
    for (const o of [ephemeral, reg, collector, result, secret, me, code, nextSecret, dealt]) o?.free();
  }
}

// ---------------------------------------------------------------- referents

/** The people the worker is referent of: [{ handle, threshold, referents, active }]. */
export function referentOf() {
  return request('GET', '/v1/recovery/referent-of');
}

/** Requests the worker is referent of, each with the words of the asking device's key. */
export async function myAsks() {
  const asks = await request('GET', '/v1/recovery/asks');
  return asks.map((a) => ({ ...a, ...fingerprintOfKey(a.ephemeral_key) }));
}

export async function oneAsk(id) {
  const a = await request('GET', `/v1/recovery/asks/${id}`, { problems: { 'not-found': 'errRecoveryClosed' } });
  return { ...a, ...fingerprintOfKey(a.ephemeral_key) };
}

const DECIDE = { 'recovery-closed': 'errRecoveryClosed', 'already-decided': 'errAlreadyDecided', 'not-found': 'errRecoveryClosed' };

/** Approves: this browser opens the worker's share and reseals it to the device's key. */
export async function approveAsk(ask) {
  let sealed;
  try {
    sealed = vault.withIdentity((id) => reshareForRequest(id, unb64(ask.my_share), ask.ephemeral_key));
  } catch (e) {
    throw plain(e, 'errCrypto');
  }
  return request('POST', `/v1/recovery/requests/${ask.id}/approve`, { body: { sealed_share: b64(sealed) }, problems: DECIDE });
}

export function refuseAsk(ask) {
  return request('POST', `/v1/recovery/requests/${ask.id}/refuse`, { problems: DECIDE });
}

export function withdrawAsk(ask) {
  return request('POST', `/v1/recovery/requests/${ask.id}/withdraw`, { problems: DECIDE });
}
