/** Encryption and decryption in a Web Worker (browsers; module workers). */
export declare class CoffreWorker {
  /** Starts the worker; `url` overrides where worker.js is served from. */
  constructor(url?: string | URL);
  /** Encrypts a stream to `age1…` recipients off the main thread. */
  encryptStream(readable: ReadableStream<Uint8Array>, recipients: string[]): ReadableStream<Uint8Array>;
  /** Decrypts a stream with `AGE-SECRET-KEY-1…` identities off the main thread. */
  decryptStream(readable: ReadableStream<Uint8Array>, identities: string[]): ReadableStream<Uint8Array>;
  /** Encrypts a Blob or File; resolves to the age file as a Blob. */
  encryptBlob(blob: Blob, recipients: string[]): Promise<Blob>;
  /** Stops the worker. */
  terminate(): void;
}
