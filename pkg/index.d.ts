// Types of the package "coffre" (hand-written; the wasm classes come from the generated
// gen/coffre_wasm.d.ts). Checked by `npm run typecheck` (tsc --noEmit).
import type { Identity, Recipient } from './gen/coffre_wasm.js';

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
  /**
   * k-of-n referent recovery (docs/format.md, "Referents"): a `RecoverySecret` seals the
   * referents key bundle and `deal`s shares sealed to each referent (`DealtShares`);
   * `reshareForRequest` is a referent's approval (their share resealed to the request's
   * ephemeral key); a `ShareCollector` checks the replies against their commitments and
   * rebuilds the secret. Shares in clear and the secret never leave wasm.
   */
  RecoverySecret,
  DealtShares,
  ShareCollector,
  reshareForRequest,
  defaultKsfVersion,
} from './gen/coffre_wasm.js';

/** A document category tag (stored; stable). */
export type Category = 'identity' | 'health' | 'housing' | 'income' | 'other';

/** Where the .wasm module comes from, when the default location does not suit. */
export type InitSource = string | URL | Request | Response | BufferSource | WebAssembly.Module;

/**
 * Loads the WebAssembly module. Await it once before any other call (later calls return
 * the same promise). Works unchanged in browsers, bundlers and Node ≥ 20.
 */
export declare function init(source?: InitSource): Promise<void>;
export default init;

/** Every stable error code. Switch on `error.code`, never on the message. */
export type CoffreErrorCode =
  | 'KEY_INVALID'
  | 'KEY_WRONG_TYPE'
  | 'KEY_WRONG_LENGTH'
  | 'KEY_FILE_EMPTY'
  | 'KEY_FILE_INVALID_LINE'
  | 'RANDOM_UNAVAILABLE'
  | 'NO_RECIPIENTS'
  | 'TOO_LARGE'
  | 'NOT_AGE_FILE'
  | 'UNSUPPORTED_VERSION'
  | 'MALFORMED_ARMOR'
  | 'MALFORMED_HEADER'
  | 'NO_IDENTITY_MATCHED'
  | 'HEADER_MAC_MISMATCH'
  | 'PAYLOAD_AUTHENTICATION_FAILED'
  | 'TRUNCATED'
  | 'TRAILING_DATA'
  | 'EMPTY_FINAL_CHUNK'
  | 'INVALID_STATE'
  | 'ENVELOPE_NOT_SINGLE_X25519'
  | 'INVALID_ARGUMENT'
  | 'MALFORMED_MESSAGE'
  | 'INVALID_SERVER_RESPONSE'
  | 'INVALID_LOGIN'
  | 'KEY_STRETCHING_FAILED'
  | 'UNKNOWN_KSF_VERSION'
  | 'MALFORMED_BUNDLE'
  | 'BUNDLE_WRONG_KIND'
  | 'BUNDLE_AUTHENTICATION_FAILED'
  | 'RECOVERY_CODE_TYPO'
  | 'RECOVERY_CODE_INVALID_CHARACTER'
  | 'RECOVERY_CODE_WRONG_LENGTH'
  | 'METADATA_INVALID_NAME'
  | 'METADATA_INVALID_MIME_TYPE'
  | 'METADATA_INVALID_DATE'
  | 'METADATA_INVALID_CATEGORY'
  | 'METADATA_MALFORMED'
  | 'METADATA_AUTHENTICATION_FAILED'
  | 'REFERENT_BAD_THRESHOLD'
  | 'REFERENT_SHARE_UNREADABLE'
  | 'REFERENT_SHARE_WRONG'
  | 'REFERENT_SHARES_MIXED'
  | 'REFERENT_DUPLICATE_SHARE'
  | 'NOT_ENOUGH_SHARES'
  | 'MALFORMED_SHARE'
  | 'INTERNAL';

/**
 * Every error the package throws: `name === "CoffreError"` and a stable `code`.
 * `err instanceof CoffreError` is true for errors thrown from wasm too.
 */
export declare class CoffreError extends Error {
  constructor(code: CoffreErrorCode, message: string);
  readonly name: 'CoffreError';
  readonly code: CoffreErrorCode;
  /** For errors about a line of text (`MALFORMED_ARMOR`): its number, from 1. */
  readonly line?: number;
}

/** Every error code, at run time. */
export declare function errorCodes(): CoffreErrorCode[];

/** Largest piece the stream helpers hand to wasm at once (1 MiB). */
export declare const MAX_PIECE_BYTES: number;

/** A recipient: an `age1…` string, or a Recipient / Identity handle. */
export type RecipientLike = string | Recipient | Identity;
/** An identity: an `AGE-SECRET-KEY-1…` string or an Identity handle. */
export type IdentityLike = string | Identity;

/** A new X25519 identity. Call `.free()` when done to wipe it from wasm memory. */
export declare function generateIdentity(): Identity;
/** Reads an `AGE-SECRET-KEY-1…` string. */
export declare function parseIdentity(secret: string): Identity;
/** The fingerprint of an `age1…` recipient, to compare face to face. */
export declare function fingerprint(recipient: string): { words: string[]; number: string };

/** Options of the encrypting functions. */
export interface EncryptOptions {
  /**
   * Write age's ASCII armor (PEM text, `-----BEGIN AGE ENCRYPTED FILE-----`, 64-column
   * base64) instead of binary: about a third larger, but safe to paste or mail.
   */
  armor?: boolean;
}

/** Encrypts `data` to `recipients`: a standard age v1 file (or its ASCII armor). */
export declare function encrypt(
  data: Uint8Array,
  recipients: RecipientLike[],
  options?: EncryptOptions,
): Uint8Array;
/** Decrypts a whole age v1 file, binary or ASCII-armored (recognised by itself). */
export declare function decrypt(data: Uint8Array, identities: IdentityLike[]): Uint8Array;
/** Wraps a binary age file in ASCII armor, e.g. `envelope || payload` from a server. */
export declare function armor(file: Uint8Array): Uint8Array;

/** A TransformStream that encrypts to `recipients` (ASCII armor on request). */
export declare function encryptTransform(
  recipients: RecipientLike[],
  options?: EncryptOptions,
): TransformStream<Uint8Array, Uint8Array>;
/**
 * A readable/writable pair for `pipeThrough` that decrypts with `identities`, binary or
 * armored; its output behaves as `decryptStream`'s.
 */
export declare function decryptTransform(
  identities: IdentityLike[],
): ReadableWritablePair<Uint8Array, Uint8Array>;
/** Encrypts a stream: the result is a standard age file (or its armor), as a stream. */
export declare function encryptStream(
  readable: ReadableStream<Uint8Array>,
  recipients: RecipientLike[],
  options?: EncryptOptions,
): ReadableStream<Uint8Array>;
/**
 * Decrypts a stream, binary or ASCII-armored (recognised by itself). Each piece is
 * authenticated; the stream errors with a CoffreError if the file is altered or cut
 * short, so the document is genuine only once it closes. Pieces that authenticated
 * before such an error are yielded first, as age does.
 */
export declare function decryptStream(
  readable: ReadableStream<Uint8Array>,
  identities: IdentityLike[],
): ReadableStream<Uint8Array>;
/** Encrypts with the header kept apart: one envelope per recipient, one payload. */
export declare function encryptDetached(
  readable: ReadableStream<Uint8Array>,
  recipients: RecipientLike[],
): { envelopes: Uint8Array[]; payload: ReadableStream<Uint8Array> };

/** Splits a single-recipient age file (views into `file`, no copy). */
export declare function splitEnvelope(file: Uint8Array): { envelope: Uint8Array; payload: Uint8Array };
/** A new envelope for `recipient`, opened with `identities`. */
export declare function rewrapEnvelope(
  envelope: Uint8Array,
  identities: string[] | Identity | [Identity],
  recipient: RecipientLike,
): Uint8Array;
/** `envelope || payload`, after checking the envelope. */
export declare function joinEnvelope(envelope: Uint8Array, payload: Uint8Array): Uint8Array;

/** Size of the module's WebAssembly.Memory in bytes (diagnostics; 0 before init). */
export declare function wasmMemoryBytes(): number;

/** Whether this engine runs WebAssembly SIMD (then init() loads the SIMD build). */
export declare function simdSupported(): boolean;
/** Whether the SIMD build was loaded by init(). */
export declare function usesSimd(): boolean;
