// The module worker behind worker-client.js: runs Encryptors and Decryptors off the
// page's main thread. Speaks a small job protocol; see worker-client.js.
import init, { Encryptor, Decryptor } from './index.js';

const ready = init();
/** Running jobs by id. */
const jobs = new Map();

function fail(id, e, failed) {
  const job = jobs.get(id) ?? failed;
  // A decryption hands on what authenticated before the error (see api.js).
  let released;
  if (job) {
    if (job instanceof Decryptor) released = job.takeReleased();
    job.free();
    jobs.delete(id);
  }
  self.postMessage(
    {
      id,
      type: 'error',
      code: e && typeof e.code === 'string' ? e.code : 'INTERNAL',
      message: e instanceof Error ? e.message : String(e),
      line: e && typeof e.line === 'number' ? e.line : undefined,
      released,
    },
    released && released.length > 0 ? [released.buffer] : [],
  );
}

function reply(id, chunk, done) {
  self.postMessage({ id, type: 'data', chunk, done }, chunk.length > 0 ? [chunk.buffer] : []);
}

self.onmessage = async (event) => {
  const msg = event.data;
  try {
    await ready;
    if (msg.type === 'start') {
      let machine;
      if (msg.op === 'decrypt') machine = new Decryptor(msg.keys);
      else if (msg.armor) machine = Encryptor.armored(msg.keys);
      else machine = new Encryptor(msg.keys);
      jobs.set(msg.id, machine);
      self.postMessage({ id: msg.id, type: 'started' });
    } else if (msg.type === 'push') {
      const out = jobs.get(msg.id).push(msg.chunk);
      reply(msg.id, out, false);
    } else if (msg.type === 'finish') {
      const job = jobs.get(msg.id);
      jobs.delete(msg.id);
      let out;
      try {
        out = job.finish();
      } catch (e) {
        fail(msg.id, e, job);
        return;
      }
      job.free();
      reply(msg.id, out, true);
    } else if (msg.type === 'cancel') {
      jobs.get(msg.id)?.free();
      jobs.delete(msg.id);
    }
  } catch (e) {
    fail(msg.id, e);
  }
};
