import type { EncryptOptions } from './index.js';

/** Encryption and decryption in a Web Worker (browsers; module workers). */
export declare class CoffreWorker {
  /** Starts the worker; `url` overrides where worker.js is served from. */
  constructor(url?: string | URL);
  /** Encrypts a stream to `age1…` recipients off the main thread (armor on request). */
  encryptStream(
    readable: ReadableStream<Uint8Array>,
    recipients: string[],
    options?: EncryptOptions,
  ): ReadableStream<Uint8Array>;
  /**
   * Decrypts a stream, binary or ASCII-armored, with `AGE-SECRET-KEY-1…` identities off
   * the main thread. Plaintext that authenticated before an error is yielded first.
   */
  decryptStream(readable: ReadableStream<Uint8Array>, identities: string[]): ReadableStream<Uint8Array>;
  /** Encrypts a Blob or File; resolves to the age file (or its armor) as a Blob. */
  encryptBlob(blob: Blob, recipients: string[], options?: EncryptOptions): Promise<Blob>;
  /** Stops the worker. */
  terminate(): void;
}
