// Compile-only check (tsc --noEmit) that the README examples type-check against the
// declarations. Never run.
import init, {
  CoffreError,
  type CoffreErrorCode,
  armor,
  decrypt,
  decryptStream,
  decryptTransform,
  encrypt,
  encryptStream,
  fingerprint,
  generateIdentity,
  splitEnvelope,
  rewrapEnvelope,
  joinEnvelope,
  Encryptor,
  RecoveryCode,
  RecoverySecret,
  ShareCollector,
  reshareForRequest,
  type Identity,
} from 'coffre';

export async function example(file: ReadableStream<Uint8Array>): Promise<CoffreErrorCode | null> {
  await init();
  const me = generateIdentity();
  const secret: string = me.toString();
  const words: string[] = me.fingerprint().words;
  const number: string = fingerprint(me.recipient()).number;
  const age: Uint8Array = encrypt(new TextEncoder().encode('hello'), [me.recipient()]);
  const plain: Uint8Array = decrypt(age, [secret]);
  const both: Uint8Array = decrypt(age, [me]);
  const out: ReadableStream<Uint8Array> = decryptStream(encryptStream(file, [me]), [me]);
  const text: Uint8Array = encrypt(new TextEncoder().encode('hello'), [me], { armor: true });
  const armoredStream: ReadableStream<Uint8Array> = encryptStream(file, [me], { armor: true });
  const rearmored: Uint8Array = armor(age);
  const piped: ReadableStream<Uint8Array> = armoredStream.pipeThrough(decryptTransform([me]));
  void [text, rearmored, piped];
  const { envelope, payload } = splitEnvelope(age);
  const other = generateIdentity();
  const shared = joinEnvelope(rewrapEnvelope(envelope, me, other.recipient()), payload);
  const enc = new Encryptor([other.recipient()]);
  const piece: Uint8Array = enc.push(plain);
  enc.finish();
  enc.free();
  void [words, number, both, out, shared, piece];
  try {
    decrypt(age, [other]);
  } catch (e) {
    if (e instanceof CoffreError) {
      const line: number | undefined = e.line;
      void line;
      return e.code;
    }
  }
  return null;
}

/** The recovery values a client sends at registration and at recovery. */
export function recoveryValues(accountId: string): { token: Uint8Array; verifier: Uint8Array } {
  const code = RecoveryCode.generate();
  try {
    return { token: code.authToken(accountId), verifier: code.verifier(accountId) };
  } finally {
    code.free();
  }
}

/** Referent recovery: what a deal stores, a referent's approval, the rebuilt secret. */
export function referentFlow(accountId: string, referents: Identity[], me: Identity): boolean {
  const secret = RecoverySecret.generate();
  const bundle: Uint8Array = secret.sealIdentity(me, accountId);
  const verifier: Uint8Array = secret.verifier(accountId);
  const dealt = secret.deal(2, referents.map((r) => r.recipient()), accountId);
  const count: number = dealt.count;
  const ephemeral = generateIdentity();
  const collector = new ShareCollector(accountId);
  for (let i = 0; i < count; i++) {
    const index: number = dealt.index(i);
    const commitment: Uint8Array = dealt.commitment(i);
    const reply: Uint8Array = reshareForRequest(referents[i], dealt.sealedShare(i), ephemeral.recipient());
    const added: number = collector.add(ephemeral, reply, commitment);
    void [index, added];
  }
  const threshold: number = collector.threshold;
  const rebuilt: RecoverySecret = collector.rebuild();
  const token: Uint8Array = rebuilt.authToken(accountId);
  void [verifier, threshold, token];
  return rebuilt.openBundle(bundle, accountId).recipient() === me.recipient();
}
