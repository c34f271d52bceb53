// API tests shared by Node (node:test) and Chromium (Playwright): each case is an async
// function of the package module and an `assert`-like object; throws on failure.

export const PINNED_RECIPIENT = 'age1zwlyl6h27gzv0lfntr7fcqrjrzqazap8sy5zylkxwneh7llf0dksu37mwt';
export const PINNED_WORDS = 'cotton coral fame toilet reveal mixed';
export const PINNED_NUMBER = '65585 93878 28400 17817 80334';

function eq(a, b, what) {
  if (a !== b) throw new Error(`${what}: expected ${JSON.stringify(b)}, got ${JSON.stringify(a)}`);
}

function sameBytes(a, b, what) {
  eq(a.length, b.length, `${what} (length)`);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) throw new Error(`${what}: byte ${i} differs`);
}

function throwsCode(f, code, what) {
  return Promise.resolve()
    .then(f)
    .then(
      () => {
        throw new Error(`${what}: expected ${code}, nothing thrown`);
      },
      (e) => {
        if (!(e instanceof Error) || e.name !== 'CoffreError') throw new Error(`${what}: not a CoffreError: ${e}`);
        eq(e.code, code, what);
      },
    );
}

function concatAll(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

async function collect(readable) {
  const parts = [];
  let total = 0;
  for await (const part of readable) {
    parts.push(part);
    total += part.length;
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function streamOf(bytes, piece) {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(at, at + piece));
      at += piece;
    },
  });
}

const text = (s) => new TextEncoder().encode(s);

function indexOf(haystack, needle) {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

export const cases = {
  async identities(c) {
    const id = c.generateIdentity();
    const secret = id.toString();
    eq(secret.startsWith('AGE-SECRET-KEY-1'), true, 'secret prefix');
    eq(id.recipient().startsWith('age1'), true, 'recipient prefix');
    const again = c.parseIdentity(secret);
    eq(again.recipient(), id.recipient(), 'parsed identity');
    const fp = id.fingerprint();
    eq(fp.words.length, 6, 'six words');
    eq(fp.number, c.fingerprint(id.recipient()).number, 'fingerprint number');
    eq(String(fp), fp.words.join(' '), 'fingerprint toString');
    fp.free();
    again.free();
    id.free();
    const two = c.Identity.parseFile(`# created by age-keygen\n${secret}\n\n${c.generateIdentity()}\n`);
    eq(two.length, 2, 'identity file');
  },

  async pinnedFingerprint(c) {
    const fp = c.fingerprint(PINNED_RECIPIENT);
    eq(fp.words.join(' '), PINNED_WORDS, 'words');
    eq(fp.number, PINNED_NUMBER, 'number');
  },

  async oneShot(c) {
    const alice = c.generateIdentity();
    const bob = c.generateIdentity();
    const file = c.encrypt(text('attestation'), [alice.recipient(), bob]);
    eq(new TextDecoder().decode(file.subarray(0, 21)), 'age-encryption.org/v1', 'age header');
    sameBytes(c.decrypt(file, [alice.toString()]), text('attestation'), 'by string');
    sameBytes(c.decrypt(file, [bob]), text('attestation'), 'by handle');
    sameBytes(c.decrypt(c.encrypt(new Uint8Array(0), [alice]), [alice]), new Uint8Array(0), 'empty');
  },

  async errorCodes(c) {
    const alice = c.generateIdentity();
    const file = c.encrypt(text('x'), [alice.recipient()]);
    await throwsCode(() => c.decrypt(file, [c.generateIdentity()]), 'NO_IDENTITY_MATCHED', 'wrong key');
    await throwsCode(() => c.decrypt(file.subarray(0, file.length - 1), [alice]), 'PAYLOAD_AUTHENTICATION_FAILED', 'cut');
    await throwsCode(() => c.decrypt(file.subarray(0, 40), [alice]), 'TRUNCATED', 'cut header');
    await throwsCode(() => c.decrypt(text('hello'), [alice]), 'NOT_AGE_FILE', 'not age');
    await throwsCode(() => c.encrypt(text('x'), []), 'NO_RECIPIENTS', 'no recipient');
    await throwsCode(() => c.encrypt(text('x'), ['age1nope']), 'KEY_INVALID', 'bad recipient');
    await throwsCode(() => c.encrypt(text('x'), [alice.toString()]), 'KEY_WRONG_TYPE', 'secret as recipient');
    await throwsCode(() => c.encrypt('x', [alice]), 'INVALID_ARGUMENT', 'string data');
    await throwsCode(() => c.Identity.parseFile('# nothing\n'), 'KEY_FILE_EMPTY', 'empty key file');
    const badLine = file.slice();
    badLine[22] = 0x78; // "-> X25519" becomes "x> X25519"
    await throwsCode(() => c.decrypt(badLine, [alice]), 'MALFORMED_HEADER', 'header line');
    const v2 = file.slice();
    v2[20] = 0x32; // age-encryption.org/v2
    await throwsCode(() => c.decrypt(v2, [alice]), 'UNSUPPORTED_VERSION', 'version');
    const badMac = file.slice();
    const mac = indexOf(badMac, text('\n--- ')) + 5;
    badMac[mac] = badMac[mac] === 0x41 ? 0x42 : 0x41;
    await throwsCode(() => c.decrypt(badMac, [alice]), 'HEADER_MAC_MISMATCH', 'MAC');
    const enc = new c.Encryptor([alice.recipient()]);
    enc.finish();
    await throwsCode(() => enc.push(text('late')), 'INVALID_STATE', 'push after finish');
    try {
      c.decrypt(file, []);
    } catch (e) {
      eq(e instanceof c.CoffreError, true, 'instanceof CoffreError');
      eq(e instanceof Error, true, 'instanceof Error');
      eq(typeof e.stack, 'string', 'stack');
    }
    const mine = new c.CoffreError('INVALID_ARGUMENT', 'x');
    eq(mine.name, 'CoffreError', 'JS-made name');
  },

  async streaming(c) {
    const alice = c.generateIdentity();
    const data = new Uint8Array(300_000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
    for (const piece of [1000, 65536, 65537, 3_000_000]) {
      const file = await collect(c.encryptStream(streamOf(data, piece), [alice]));
      sameBytes(c.decrypt(file, [alice]), data, `encryptStream/${piece}`);
      sameBytes(await collect(c.decryptStream(streamOf(file, piece), [alice.toString()])), data, `decryptStream/${piece}`);
    }
    const file = c.encrypt(data, [alice]);
    file[file.length - 5] ^= 1;
    await throwsCode(() => collect(c.decryptStream(streamOf(file, 4096), [alice])), 'PAYLOAD_AUTHENTICATION_FAILED', 'tampered stream');
  },

  async armor(c) {
    const alice = c.generateIdentity();
    const data = new Uint8Array(150_000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 13) & 0xff;
    const armored = c.encrypt(data, [alice], { armor: true });
    const lines = new TextDecoder().decode(armored).split('\n');
    eq(lines[0], '-----BEGIN AGE ENCRYPTED FILE-----', 'begin line');
    eq(lines.at(-2), '-----END AGE ENCRYPTED FILE-----', 'end line');
    eq(lines.at(-1), '', 'final line feed');
    const body = lines.slice(1, -2);
    for (const line of body.slice(0, -1)) eq(line.length, 64, 'full line');
    eq(body.at(-1).length <= 64 && body.at(-1).length > 0, true, 'last line');
    // Recognised by every decrypting function, with LF or CRLF.
    sameBytes(c.decrypt(armored, [alice]), data, 'decrypt(armor)');
    sameBytes(c.decrypt(armored, [alice.toString()]), data, 'decrypt(armor, string)');
    const crlf = text(new TextDecoder().decode(armored).replaceAll('\n', '\r\n'));
    sameBytes(c.decrypt(crlf, [alice]), data, 'decrypt(CRLF armor)');
    for (const piece of [61, 65, 4096, 1 << 20]) {
      sameBytes(await collect(c.decryptStream(streamOf(armored, piece), [alice])), data, `decryptStream(armor)/${piece}`);
    }
    // Streams write the same armor; armor() wraps an existing binary file.
    for (const piece of [100, 65536, 200_000]) {
      const streamed = await collect(c.encryptStream(streamOf(data, piece), [alice], { armor: true }));
      sameBytes(c.decrypt(streamed, [alice]), data, `encryptStream(armor)/${piece}`);
      eq(streamed.length, armored.length, `encryptStream(armor)/${piece} length`);
    }
    const binary = c.encrypt(data, [alice]);
    sameBytes(c.decrypt(c.armor(binary), [alice]), data, 'armor()');
    eq(c.armor(binary).length, armored.length, 'armor() length');
    const piped = await collect(streamOf(c.armor(binary), 5000).pipeThrough(c.decryptTransform([alice])));
    sameBytes(piped, data, 'decryptTransform(armor)');
    await throwsCode(() => c.encrypt(data, [alice], { armor: 'yes' }), 'INVALID_ARGUMENT', 'armor option type');

    // Each broken rule: MALFORMED_ARMOR, a message naming the rule, and the line.
    const small = new TextDecoder().decode(c.encrypt(text('récépissé'), [alice], { armor: true }));
    const l = small.split('\n');
    const last = l.length - 3; // the short last base64 line
    const edit = (i, line) => l.map((x, j) => (j === i ? line : x)).join('\n');
    const badPadding = l[last].endsWith('=') ? l[last].replace(/=+$/, '') : l[last].slice(0, -1);
    const armorCases = [
      ['bad base64', edit(1, `*${l[1].slice(1)}`), 'invalid base64 character in the armor', 2],
      ['line too long', edit(1, `${l[1]}A`), 'an armor line is longer than 64 columns', 2],
      ['short line not last', edit(1, l[1].slice(0, 60)), 'an armor line shorter than 64 columns is not the last one', 2],
      ['padding', edit(last, badPadding), 'base64 padding is missing or wrong in the armor', last + 1],
      ['missing footer', l.slice(0, -2).join('\n') + '\n', 'the file ends before the line -----END AGE ENCRYPTED FILE-----', undefined],
      ['garbage after footer', `${small}garbage\n`, 'data after the armor end line', l.length],
      ['truncated', small.slice(0, 100), 'the file ends before the line -----END AGE ENCRYPTED FILE-----', undefined],
      ['empty line', edit(1, ''), 'empty line inside the armor', 2],
      ['wrong label', edit(0, '-----BEGIN AGE ENCRYPTED DATA-----'), 'the armor does not start with -----BEGIN AGE ENCRYPTED FILE-----', 1],
    ];
    // Non-canonical base64: same bytes, but the last symbol's unused bits set.
    const pad = l[last].match(/=*$/)[0].length;
    if (pad > 0) {
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
      const at = l[last].length - pad - 1;
      const sym = alphabet[alphabet.indexOf(l[last][at]) ^ 1];
      armorCases.push(['non-canonical', edit(last, l[last].slice(0, at) + sym + l[last].slice(at + 1)), "the armor's base64 is not canonical", last + 1]);
    }
    for (const [what, bad, message, line] of armorCases) {
      for (const f of [() => c.decrypt(text(bad), [alice]), () => collect(c.decryptStream(streamOf(text(bad), 7), [alice]))]) {
        await Promise.resolve()
          .then(f)
          .then(
            () => {
              throw new Error(`${what}: nothing thrown`);
            },
            (e) => {
              eq(e.code, 'MALFORMED_ARMOR', `${what} code`);
              eq(e.message, message, `${what} message`);
              eq(e.line, line, `${what} line`);
            },
          );
      }
    }
  },

  async 'decryptStream yields what authenticated before an error'(c) {
    const alice = c.generateIdentity();
    // Two full chunks, the second one final, then junk: age releases both chunks.
    const data = new Uint8Array(2 * 65536).fill(9);
    const file = c.encrypt(data, [alice]);
    const bad = new Uint8Array(file.length + 4);
    bad.set(file);
    const parts = [];
    let error;
    try {
      for await (const part of c.decryptStream(streamOf(bad, 10_000), [alice])) parts.push(part);
    } catch (e) {
      error = e;
    }
    eq(error?.code, 'TRAILING_DATA', 'error after the released chunks');
    sameBytes(concatAll(parts), data, 'released before the error');
    await throwsCode(() => c.decrypt(bad, [alice]), 'TRAILING_DATA', 'one-shot releases nothing');
  },

  async envelopes(c) {
    const owner = c.generateIdentity();
    const worker = c.generateIdentity();
    const file = c.encrypt(text('titre de séjour'), [owner]);
    const { envelope, payload } = c.splitEnvelope(file);
    eq(envelope.length + payload.length, file.length, 'split sizes');
    const forWorker = c.rewrapEnvelope(envelope, owner, worker.recipient());
    sameBytes(c.decrypt(c.joinEnvelope(forWorker, payload), [worker]), text('titre de séjour'), 'shared');
    const again = c.rewrapEnvelope(envelope, [owner.toString()], worker);
    sameBytes(c.decrypt(c.joinEnvelope(again, payload), [worker.toString()]), text('titre de séjour'), 'shared by string');
    await throwsCode(() => c.rewrapEnvelope(envelope, worker, owner), 'NO_IDENTITY_MATCHED', 'rewrap by stranger');
    await throwsCode(() => c.splitEnvelope(c.encrypt(text('x'), [owner, worker])), 'ENVELOPE_NOT_SINGLE_X25519', 'two stanzas');

    const { envelopes, payload: stream } = c.encryptDetached(streamOf(text('bulletin de paie'), 5), [owner, worker]);
    const body = await collect(stream);
    eq(envelopes.length, 2, 'one envelope per recipient');
    sameBytes(c.decrypt(c.joinEnvelope(envelopes[1], body), [worker]), text('bulletin de paie'), 'detached');
  },

  async accounts(c) {
    const me = c.generateIdentity();
    const code = c.RecoveryCode.generate();
    const printed = code.toString();
    eq(/^([0-9A-Z]{4}-){7}[0-9A-Z]{4}$/.test(printed), true, 'printed code shape');
    const typed = c.RecoveryCode.parse(printed.toLowerCase().replaceAll('-', ' '));
    const bundle = code.sealIdentity(me, 'acct-1');
    eq(bundle.length, 62, 'bundle length');
    eq(typed.openBundle(bundle, 'acct-1').recipient(), me.recipient(), 'recovery opens the bundle');
    sameBytes(typed.authToken('acct-1'), code.authToken('acct-1'), 'auth token');
    // What the server stores: SHA-256("coffre/v1/recovery/verifier" || token).
    const token = code.authToken('acct-1');
    const digest = await crypto.subtle.digest('SHA-256', concatAll([text('coffre/v1/recovery/verifier'), token]));
    sameBytes(typed.verifier('acct-1'), new Uint8Array(digest), 'recovery verifier');
    await throwsCode(() => typed.openBundle(bundle, 'acct-2'), 'BUNDLE_AUTHENTICATION_FAILED', 'other account');
    await throwsCode(() => typed.openBundle(bundle.subarray(1), 'acct-1'), 'UNSUPPORTED_VERSION', 'cut bundle');
    await throwsCode(() => c.RecoveryCode.parse('ACD'), 'RECOVERY_CODE_WRONG_LENGTH', 'short code');
    await throwsCode(() => c.RecoveryCode.parse(printed.replace(/[0-9A-Z]/, 'O')), 'RECOVERY_CODE_INVALID_CHARACTER', 'letter O');
    const flip = printed[0] === 'Q' ? 'P' : 'Q';
    await throwsCode(() => c.RecoveryCode.parse(flip + printed.slice(1)), 'RECOVERY_CODE_TYPO', 'typo');

    const reg = c.Registration.start('correct horse battery');
    eq(reg.request.length, 32, 'registration request');
    await throwsCode(() => reg.finish(new Uint8Array(3), c.defaultKsfVersion()), 'MALFORMED_MESSAGE', 'bad response');
    const login = c.Login.start('correct horse battery');
    eq(login.request.length, 96, 'login request (KE1)');
    await throwsCode(() => login.finish(new Uint8Array(320), 0xbeef), 'UNKNOWN_KSF_VERSION', 'ksf version');
  },

  async referents(c) {
    const account = '0123456789abcdef0123456789abcdef';
    const me = c.generateIdentity();
    const referents = [c.generateIdentity(), c.generateIdentity(), c.generateIdentity()];
    const secret = c.RecoverySecret.generate();
    const bundle = secret.sealIdentity(me, account);
    eq(bundle.length, 62, 'bundle length');
    eq(bundle[1], 3, 'referents bundle kind');
    // What the server stores: SHA-256("coffre/v1/recovery/verifier" || token), as for codes.
    const token = secret.authToken(account);
    eq(token.length, 32, 'token length');
    const digest = await crypto.subtle.digest('SHA-256', concatAll([text('coffre/v1/recovery/verifier'), token]));
    sameBytes(secret.verifier(account), new Uint8Array(digest), 'verifier');
    const dealt = secret.deal(2, referents.map((r) => r.recipient()), account);
    eq(dealt.count, 3, 'count');
    eq(dealt.threshold, 2, 'threshold');
    for (let i = 0; i < 3; i++) {
      eq(dealt.index(i), i + 1, `index ${i}`);
      eq(dealt.commitment(i).length, 32, `commitment ${i}`);
      // A sealed share is a plain age file to the referent, holding 35 bytes.
      eq(c.decrypt(dealt.sealedShare(i), [referents[i]]).length, 35, `sealed share ${i}`);
    }
    await throwsCode(() => dealt.sealedShare(3), 'INVALID_ARGUMENT', 'out of range');
    await throwsCode(() => secret.deal(4, referents.map((r) => r.recipient()), account), 'REFERENT_BAD_THRESHOLD', 'threshold above count');

    const ephemeral = c.generateIdentity();
    const reply = (deal, i) => c.reshareForRequest(referents[i], deal.sealedShare(i), ephemeral.recipient());
    const collector = new c.ShareCollector(account);
    eq(collector.threshold, 0, 'no threshold yet');
    eq(collector.add(ephemeral, reply(dealt, 2), dealt.commitment(2)), 3, 'index of the first reply');
    eq(collector.threshold, 2, 'threshold from the first share');
    await throwsCode(() => collector.rebuild(), 'NOT_ENOUGH_SHARES', 'one share of two');
    // Referent 2 answers with a share of another deal: it opens but is the wrong one.
    const older = c.RecoverySecret.generate().deal(2, referents.map((r) => r.recipient()), account);
    await throwsCode(() => collector.add(ephemeral, reply(older, 1), dealt.commitment(1)), 'REFERENT_SHARE_WRONG', 'wrong share');
    await throwsCode(() => collector.add(ephemeral, dealt.sealedShare(1), dealt.commitment(1)), 'REFERENT_SHARE_UNREADABLE', 'not resealed');
    await throwsCode(() => c.reshareForRequest(referents[0], dealt.sealedShare(1), ephemeral.recipient()), 'REFERENT_SHARE_UNREADABLE', 'not my share');
    eq(collector.count, 1, 'refused shares are not kept');
    collector.add(ephemeral, reply(dealt, 1), dealt.commitment(1));
    const rebuilt = collector.rebuild();
    sameBytes(rebuilt.authToken(account), token, 'rebuilt token');
    eq(rebuilt.openBundle(bundle, account).recipient(), me.recipient(), 'rebuilt secret opens the bundle');
    await throwsCode(() => older.index(9), 'INVALID_ARGUMENT', 'index out of range');
    await throwsCode(() => c.RecoveryCode.generate().openBundle(bundle, account), 'BUNDLE_WRONG_KIND', 'a code cannot open it');
    for (const x of [collector, rebuilt, dealt, older, secret]) x.free();
  },

  async metadata(c) {
    const me = c.generateIdentity();
    const enc = new c.Encryptor([me.recipient()]);
    const meta = new c.Metadata('titre-de-séjour.pdf', 'application/pdf', 'identity', undefined, '2027-01-31');
    const sealed = enc.sealMetadata(meta);
    eq(sealed.length % 256, 13 + 16, 'padded length');
    const file = concatAll([enc.push(text('%PDF-1.7')), enc.finish()]);
    const dec = new c.Decryptor([]);
    dec.addIdentity(me);
    await throwsCode(() => dec.openMetadata(sealed), 'INVALID_STATE', 'before the header');
    dec.push(file);
    const opened = dec.openMetadata(sealed);
    eq(opened.name, 'titre-de-séjour.pdf', 'name');
    eq(opened.category, 'identity', 'category');
    eq(opened.created, undefined, 'no created date');
    eq(opened.documentDate, '2027-01-31', 'document date');
    const env = c.Envelope.split(file);
    eq(env.openMetadata(me, sealed).mimeType, 'application/pdf', 'via envelope');
    const renamed = env.sealMetadata(me, new c.Metadata('carte.pdf', 'application/pdf', 'other'));
    eq(env.openMetadataWithStrings([me.toString()], renamed).name, 'carte.pdf', 'renamed');
    await throwsCode(() => new c.Metadata('a', 'b/c', 'pets'), 'METADATA_INVALID_CATEGORY', 'category');
    await throwsCode(() => enc.sealMetadata(meta), 'INVALID_STATE', 'after finish');
    const enc2 = new c.Encryptor([me.recipient()]);
    await throwsCode(() => enc2.sealMetadata(new c.Metadata('a', 'b/c', 'other', '2027-02-30')), 'METADATA_INVALID_DATE', 'date');
    const tampered = sealed.slice();
    tampered[20] ^= 1;
    await throwsCode(() => env.openMetadata(me, tampered), 'METADATA_AUTHENTICATION_FAILED', 'tampered');
  },

  async loader(c) {
    eq(c.simdSupported(), true, 'SIMD in Node 20 and current Chromium');
    eq(c.usesSimd(), true, 'the SIMD build was loaded');
    eq(c.wasmMemoryBytes() > 0, true, 'memory visible');
  },

  async codesMatchTypes(c, dts) {
    const declared = [...dts.matchAll(/\| '([A-Z0-9_]+)'/g)].map((m) => m[1]);
    eq(JSON.stringify(declared), JSON.stringify(c.errorCodes()), 'CoffreErrorCode union in index.d.ts');
  },
};

/**
 * Streams `mib` MiB through encryptStream then decryptStream without ever holding the
 * file; returns the peak wasm memory seen. The data is a cheap counter pattern.
 */
export async function bigStream(c, mib) {
  const id = c.generateIdentity();
  const piece = 64 * 1024;
  const total = mib * 1024 * 1024;
  let made = 0;
  const source = new ReadableStream(
    {
      pull(controller) {
        if (made >= total) return controller.close();
        const chunk = new Uint8Array(piece);
        chunk.fill((made / piece) & 0xff);
        made += piece;
        controller.enqueue(chunk);
      },
    },
    { highWaterMark: 2 },
  );
  let peak = 0;
  let seen = 0;
  let checked = 0;
  const out = c.decryptStream(c.encryptStream(source, [id]), [id]);
  for await (const part of out) {
    for (let i = 0; i < part.length; i += 4096) {
      const at = seen + i;
      const want = Math.floor(at / piece) & 0xff;
      if (part[i] !== want) throw new Error(`byte ${at}: got ${part[i]}, want ${want}`);
      checked++;
    }
    seen += part.length;
    peak = Math.max(peak, c.wasmMemoryBytes());
  }
  if (seen !== total) throw new Error(`got ${seen} bytes back, want ${total}`);
  id.free();
  return { peak, checked };
}
