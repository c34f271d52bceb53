// The environment-independent part of the package: everything but loading the module.
// index.js (browsers, bundlers) and node.js (Node) add `init()` and re-export this.
import * as wasm from './gen/coffre_wasm.js';

export {
  Identity,
  Recipient,
  Fingerprint,
  Envelope,
  Encryptor,
  Decryptor,
  Metadata,
  Registration,
  RegistrationResult,
  Login,
  LoginResult,
  RecoveryCode,
  RecoverySecret,
  DealtShares,
  ShareCollector,
  reshareForRequest,
  defaultKsfVersion,
} from './gen/coffre_wasm.js';

let exports;
let simd = false;

/**
 * Whether the engine runs WebAssembly SIMD (a 30-byte probe module using v128 ops, as
 * the wasm-feature-detect project does). Decides which of the two shipped modules loads.
 */
export function simdSupported() {
  try {
    return WebAssembly.validate(
      new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]),
    );
  } catch {
    return false;
  }
}

/** Whether the SIMD build of the module was loaded (diagnostics). */
export function usesSimd() {
  return simd;
}

/** Called by init() with the instantiated module's exports. @internal */
export function setExports(e, withSimd) {
  exports = e;
  simd = withSimd;
}

/**
 * The current size of the module's WebAssembly.Memory in bytes (for diagnostics and
 * memory tests; wasm memory only grows). 0 before init().
 */
export function wasmMemoryBytes() {
  return exports ? exports.memory.buffer.byteLength : 0;
}

/** Largest piece handed to wasm at once: bounds wasm memory whatever the input chunking. */
export const MAX_PIECE_BYTES = 1 << 20;

/**
 * Every error the package throws. Errors from wasm are plain `Error`s named
 * `CoffreError` (they cross the wasm boundary), so `instanceof` checks the name and code.
 */
export class CoffreError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'CoffreError';
    this.code = code;
  }

  static [Symbol.hasInstance](value) {
    return value instanceof Error && value.name === 'CoffreError' && typeof value.code === 'string';
  }
}

function invalid(message) {
  return new CoffreError('INVALID_ARGUMENT', message);
}

function checkBytes(data, what) {
  if (!(data instanceof Uint8Array)) throw invalid(`${what} must be a Uint8Array`);
}

/** Recipients as `age1…` strings, from strings, Recipient or Identity handles. */
function recipientStrings(recipients) {
  if (!Array.isArray(recipients)) throw invalid('recipients must be an array');
  return recipients.map((r) => {
    if (typeof r === 'string') return r;
    if (r instanceof wasm.Identity) return r.recipient();
    if (r instanceof wasm.Recipient) return r.toString();
    throw invalid('a recipient must be an age1… string, a Recipient or an Identity');
  });
}

/** A Decryptor for identities given as strings and/or Identity handles. */
function newDecryptor(identities) {
  if (!Array.isArray(identities)) throw invalid('identities must be an array');
  const strings = [];
  const handles = [];
  for (const id of identities) {
    if (typeof id === 'string') strings.push(id);
    else if (id instanceof wasm.Identity) handles.push(id);
    else throw invalid('an identity must be an AGE-SECRET-KEY-1… string or an Identity');
  }
  const dec = new wasm.Decryptor(strings);
  for (const h of handles) dec.addIdentity(h);
  return dec;
}

/** Every error code the package can throw (the same list as `CoffreErrorCode`). */
export function errorCodes() {
  return wasm.errorCodes();
}

/** A new X25519 identity. Call `.free()` when done with it to wipe it from memory. */
export function generateIdentity() {
  return wasm.Identity.generate();
}

/** Reads an `AGE-SECRET-KEY-1…` string. */
export function parseIdentity(secret) {
  return wasm.Identity.parse(secret);
}

/** The fingerprint (six words, five groups of digits) of an `age1…` recipient. */
export function fingerprint(recipient) {
  const r = wasm.Recipient.parse(recipient);
  try {
    const fp = r.fingerprint();
    try {
      return { words: fp.words, number: fp.number };
    } finally {
      fp.free();
    }
  } finally {
    r.free();
  }
}

/** Whether `options` (undefined, or `{ armor?: boolean }`) asks for ASCII armor. */
function wantsArmor(options) {
  if (options === undefined) return false;
  if (options === null || typeof options !== 'object') throw invalid('options must be an object');
  if (options.armor !== undefined && typeof options.armor !== 'boolean') {
    throw invalid('options.armor must be a boolean');
  }
  return options.armor === true;
}

/**
 * Encrypts `data` to `recipients` as one standard age v1 file; with `{ armor: true }`,
 * as age's ASCII armor (PEM text).
 */
export function encrypt(data, recipients, options) {
  checkBytes(data, 'data');
  const armored = wantsArmor(options);
  const file = wasm.encrypt(data, recipientStrings(recipients));
  return armored ? wasm.armor(file) : file;
}

/** Wraps a binary age file in age's ASCII armor (decryption recognises armor by itself). */
export function armor(file) {
  checkBytes(file, 'file');
  return wasm.armor(file);
}

/**
 * Decrypts a whole age v1 file, binary or ASCII-armored, with `identities` (strings or
 * Identity handles).
 */
export function decrypt(data, identities) {
  checkBytes(data, 'data');
  if (Array.isArray(identities) && identities.every((i) => typeof i === 'string')) {
    return wasm.decrypt(data, identities);
  }
  const dec = newDecryptor(identities);
  try {
    const head = dec.push(data);
    const tail = dec.finish();
    return concat(head, tail);
  } finally {
    dec.free();
  }
}

function concat(a, b) {
  if (b.length === 0) return a;
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/**
 * A TransformStream around an Encryptor or Decryptor: pieces of any size in, output as
 * soon as the wasm side releases it. Large pieces are fed in views of at most
 * MAX_PIECE_BYTES, so wasm memory stays small whatever the source's chunking.
 */
function pushTransform(machine) {
  let done = false;
  const release = () => {
    if (!done) {
      done = true;
      machine.free();
    }
  };
  return new TransformStream({
    transform(chunk, controller) {
      try {
        checkBytes(chunk, 'each stream chunk');
        for (let at = 0; at < chunk.length; at += MAX_PIECE_BYTES) {
          const out = machine.push(chunk.subarray(at, at + MAX_PIECE_BYTES));
          if (out.length > 0) controller.enqueue(out);
        }
      } catch (e) {
        release();
        throw e;
      }
    },
    flush(controller) {
      try {
        const out = machine.finish();
        if (out.length > 0) controller.enqueue(out);
      } finally {
        release();
      }
    },
    cancel() {
      release();
    },
  });
}

/**
 * A TransformStream that encrypts to `recipients`; its output is a standard age file,
 * or ASCII armor with `{ armor: true }`.
 */
export function encryptTransform(recipients, options) {
  const armored = wantsArmor(options);
  const keys = recipientStrings(recipients);
  return pushTransform(armored ? wasm.Encryptor.armored(keys) : new wasm.Encryptor(keys));
}

/**
 * The plaintext of `source` (an age file, binary or armored, as a stream), pulled on
 * demand. A chunk is handed on once its tag verifies. When the file then proves bad
 * (altered, cut, followed by junk), whatever authenticated before is delivered first and
 * the stream errors on the next read: the reader sees exactly what age would release.
 */
function decryptReadable(source, machine) {
  const reader = source.getReader();
  let freed = false;
  let pending = null;
  const release = () => {
    if (!freed) {
      freed = true;
      machine.free();
    }
  };
  return new ReadableStream(
    {
      async pull(controller) {
        if (pending) throw pending;
        let enqueued = false;
        const hand = (out) => {
          if (out.length > 0) {
            controller.enqueue(out);
            enqueued = true;
          }
        };
        try {
          while (!enqueued) {
            const { value, done } = await reader.read();
            if (done) {
              hand(machine.finish());
              release();
              controller.close();
              return;
            }
            checkBytes(value, 'each stream chunk');
            for (let at = 0; at < value.length; at += MAX_PIECE_BYTES) {
              hand(machine.push(value.subarray(at, at + MAX_PIECE_BYTES)));
            }
          }
        } catch (e) {
          const rest = freed ? new Uint8Array(0) : machine.takeReleased();
          release();
          reader.cancel(e).catch(() => {});
          hand(rest);
          // Deliver what was released before the error, then fail the next read.
          if (enqueued) pending = e;
          else throw e;
        }
      },
      cancel(reason) {
        release();
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}

/**
 * A readable/writable pair (for `pipeThrough`) that decrypts with `identities`; its
 * output is authenticated plaintext, delivered as `decryptStream` describes.
 */
export function decryptTransform(identities) {
  const machine = newDecryptor(identities);
  const input = new TransformStream();
  return { writable: input.writable, readable: decryptReadable(input.readable, machine) };
}

/**
 * Encrypts a stream of plaintext; returns the age file as a stream (ASCII armor with
 * `{ armor: true }`).
 */
export function encryptStream(readable, recipients, options) {
  return readable.pipeThrough(encryptTransform(recipients, options));
}

/**
 * Decrypts a stream holding an age file, binary or ASCII-armored (recognised by itself).
 * Each piece it yields is authenticated; the stream errors (CoffreError) if the file is
 * altered or cut short, so treat the document as genuine only once the stream has closed
 * without error. Pieces that authenticated before such an error are still yielded
 * first, as age does.
 */
export function decryptStream(readable, identities) {
  return decryptReadable(readable, newDecryptor(identities));
}

/**
 * Encrypts a stream to `recipients` with the header kept apart: returns one envelope
 * per recipient and the payload stream. `envelope || payload` is a standard age file.
 */
export function encryptDetached(readable, recipients) {
  const enc = wasm.Encryptor.detached(recipientStrings(recipients));
  const envelopes = enc.envelopes();
  return { envelopes, payload: readable.pipeThrough(pushTransform(enc)) };
}

/** Splits a single-recipient age file into its envelope and its payload (no copy). */
export function splitEnvelope(file) {
  checkBytes(file, 'file');
  const env = wasm.Envelope.split(file);
  try {
    const length = env.byteLength;
    return { envelope: file.subarray(0, length), payload: file.subarray(length) };
  } finally {
    env.free();
  }
}

/**
 * Opens `envelope` with `identities` and seals the same file key to `recipient`: the new
 * envelope lets `recipient` read the document, and the payload is untouched.
 */
export function rewrapEnvelope(envelope, identities, recipient) {
  checkBytes(envelope, 'envelope');
  const [to] = recipientStrings([recipient]);
  const env = wasm.Envelope.parse(envelope);
  try {
    let next;
    if (Array.isArray(identities) && identities.every((i) => typeof i === 'string')) {
      next = env.rewrapWithStrings(identities, to);
    } else if (identities instanceof wasm.Identity) {
      next = env.rewrap(identities, to);
    } else if (Array.isArray(identities) && identities.length === 1 && identities[0] instanceof wasm.Identity) {
      next = env.rewrap(identities[0], to);
    } else {
      throw invalid('identities must be strings, or one Identity');
    }
    try {
      return next.toBytes();
    } finally {
      next.free();
    }
  } finally {
    env.free();
  }
}

/** `envelope || payload`: a standard age file. */
export function joinEnvelope(envelope, payload) {
  checkBytes(envelope, 'envelope');
  checkBytes(payload, 'payload');
  wasm.Envelope.parse(envelope).free();
  return concat(envelope, payload);
}
