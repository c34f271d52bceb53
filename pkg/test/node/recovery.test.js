// RecoveryCode.verifier(accountId), checked against an independent computation with
// node:crypto: SHA-256("coffre/v1/recovery/verifier" || authToken(accountId)), the
// label of coffre-core's recovery.rs (RECOVERY_VERIFIER_LABEL).
import { test } from 'node:test';
import { createHash } from 'node:crypto';
import init, { RecoveryCode } from 'coffre';

await init();

const RECOVERY_VERIFIER_LABEL = 'coffre/v1/recovery/verifier';

function expected(code, accountId) {
  return new Uint8Array(
    createHash('sha256').update(RECOVERY_VERIFIER_LABEL).update(code.authToken(accountId)).digest(),
  );
}

function sameBytes(a, b, what) {
  if (!(a instanceof Uint8Array)) throw new Error(`${what}: not a Uint8Array`);
  if (Buffer.compare(Buffer.from(a), Buffer.from(b)) !== 0) {
    throw new Error(`${what}: ${Buffer.from(a).toString('hex')} != ${Buffer.from(b).toString('hex')}`);
  }
}

test('RecoveryCode.verifier is SHA-256(label || authToken)', () => {
  const code = RecoveryCode.generate();
  try {
    for (const account of ['acct-1', '0123456789abcdef0123456789abcdef', 'é']) {
      const verifier = code.verifier(account);
      if (verifier.length !== 32) throw new Error(`verifier length ${verifier.length}`);
      sameBytes(verifier, expected(code, account), account);
    }
    // The same code typed back gives the same verifier; another account another one.
    const typed = RecoveryCode.parse(code.toString().toLowerCase());
    sameBytes(typed.verifier('acct-1'), code.verifier('acct-1'), 'typed code');
    typed.free();
    if (Buffer.from(code.verifier('acct-1')).equals(Buffer.from(code.verifier('acct-2')))) {
      throw new Error('two accounts share a verifier');
    }
  } finally {
    code.free();
  }
});
