// Encryption and decryption in a Web Worker, so large files never block the page.
// Browser only (module workers). Keys cross to the worker as strings: Identity handles
// live in one wasm instance and cannot be shared with another.
import { CoffreError, MAX_PIECE_BYTES } from './api.js';

export class CoffreWorker {
  /**
   * Starts the worker. `url` overrides where worker.js is served from (bundlers resolve
   * the default `new URL('./worker.js', import.meta.url)` themselves).
   */
  constructor(url) {
    this.worker = new Worker(url ?? new URL('./worker.js', import.meta.url), { type: 'module' });
    this.nextId = 1;
    this.waiting = new Map();
    this.worker.onmessage = (event) => {
      const msg = event.data;
      const waiter = this.waiting.get(msg.id);
      if (!waiter) return;
      this.waiting.delete(msg.id);
      if (msg.type === 'error') {
        const error = new CoffreError(msg.code, msg.message);
        if (msg.line !== undefined) error.line = msg.line;
        waiter.reject(msg.released?.length > 0 ? { error, released: msg.released } : error);
      }
      else waiter.resolve(msg);
    };
    this.worker.onerror = (event) => {
      const error = new CoffreError('INTERNAL', `worker failed: ${event.message ?? 'unknown error'}`);
      for (const w of this.waiting.values()) w.reject(error);
      this.waiting.clear();
    };
  }

  /** Sends one message of job `id` and waits for the worker's answer. */
  call(id, message, transfer = []) {
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ id, ...message }, transfer);
    });
  }

  /**
   * Runs a stream through the worker: one piece in flight at a time, so memory stays
   * bounded by the piece size on both sides.
   */
  run(op, readable, keys, armor = false) {
    const id = this.nextId++;
    const reader = readable.getReader();
    let started = null;
    let pending = null;
    return new ReadableStream({
      pull: async (controller) => {
        if (pending) throw pending;
        started ??= this.call(id, { type: 'start', op, keys, armor });
        await started;
        try {
          await this.pump(id, reader, controller);
        } catch (e) {
          // A decryption's plaintext that authenticated before the error comes first; the
          // error is raised on the next read, once the reader has taken it.
          if (e && e.error && e.released) {
            controller.enqueue(e.released);
            pending = e.error;
            return;
          }
          throw e;
        }
      },
      cancel: async (reason) => {
        this.worker.postMessage({ id, type: 'cancel' });
        await reader.cancel(reason);
      },
    });
  }

  /** Feeds pieces of `reader` to job `id` until some output is ready or the input ends. */
  async pump(id, reader, controller) {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        const msg = await this.call(id, { type: 'finish' });
        if (msg.chunk.length > 0) controller.enqueue(msg.chunk);
        controller.close();
        return;
      }
      if (!(value instanceof Uint8Array)) throw new CoffreError('INVALID_ARGUMENT', 'each stream chunk must be a Uint8Array');
      for (let at = 0; at < value.length; at += MAX_PIECE_BYTES) {
        // Copy the piece so the caller's buffer is never detached by the transfer.
        const piece = value.slice(at, at + MAX_PIECE_BYTES);
        const msg = await this.call(id, { type: 'push', chunk: piece }, [piece.buffer]);
        if (msg.chunk.length > 0) controller.enqueue(msg.chunk);
      }
      if (controller.desiredSize !== null && controller.desiredSize <= 0) return;
    }
  }

  /**
   * Encrypts a stream to `recipients` (`age1…` strings) in the worker; ASCII armor with
   * `{ armor: true }`.
   */
  encryptStream(readable, recipients, options) {
    return this.run('encrypt', readable, recipients, options?.armor === true);
  }

  /**
   * Decrypts a stream, binary or ASCII-armored, with `identities` (`AGE-SECRET-KEY-1…`
   * strings) in the worker.
   */
  decryptStream(readable, identities) {
    return this.run('decrypt', readable, identities);
  }

  /** Encrypts a Blob or File (e.g. from an <input type=file>) in the worker. */
  async encryptBlob(blob, recipients, options) {
    return new Response(this.encryptStream(blob.stream(), recipients, options)).blob();
  }

  /** Stops the worker; running jobs fail. */
  terminate() {
    this.worker.terminate();
    const error = new CoffreError('INVALID_STATE', 'the worker was terminated');
    for (const w of this.waiting.values()) w.reject(error);
    this.waiting.clear();
  }
}
