// Safety checks: a public key's fingerprint shown so that anyone can compare it (emoji
// with their names, words, number, QR), and scanning the other person's QR with the
// camera. Loaded with screens.js; the emoji names, the French words and the QR decoder
// load only when a check is on the screen.

import { h, lang, drawQr, onLeave } from './ui.js';
import STRINGS from './i18n/safety.js';

/** A string of the safety checks in the page's language (i18n/safety.js). */
const s = (key) => (STRINGS[lang()] ?? STRINGS.en)[key];

/** BIP-39 lists other than English, by UI language (English comes from the core). */
const WORDLISTS = { fr: () => import('./vendor/bip39-french.js') };

/** What the QR of a fingerprint says (docs/format.md, "Fingerprints"). */
const QR_PREFIX = 'coffre-fingerprint:';
const qrText = (fp) => `${QR_PREFIX}${fp.number.replace(/ /g, '')}`;

function styles() {
  if (document.getElementById('safety-css')) return;
  document.head.append(h('link', { rel: 'stylesheet', href: '/safety.css', id: 'safety-css' }));
}

/**
 * The fingerprint `fp` ({ words, wordIndices, emoji, emojiIndices, number }) in a box
 * with id `id`. With `scan`, a "Scan their code" button compares the other person's QR
 * with this fingerprint; a mismatch disables the element with id `guard` (the button
 * that would go on with this key) until a scan matches.
 */
export function fingerprintBox(fp, id, { scan = false, guard = null } = {}) {
  styles();
  const l = lang();
  const wordsFrom = WORDLISTS[l] ? l : 'en';
  const emoji = h('ol', { class: 'emoji', translate: 'no' }, fp.emoji.map((e) => h('li', {},
    h('span', { class: 'glyph', 'aria-hidden': 'true', text: e }),
    h('span', { class: 'name' }),
  )));
  // Words of another list appear all at once when it has loaded, never the English
  // ones first.
  const items = (list) => list.map((w) => h('li', { text: w }));
  const words = h('ol', { class: 'words', translate: 'no', lang: wordsFrom, dir: 'ltr' },
    wordsFrom === 'en' ? items(fp.words) : []);
  const box = h('div', { class: 'fingerprint', id, 'aria-busy': 'true' },
    h('p', { class: 'fp-label', text: s('fpPictures') }),
    emoji,
    h('p', { class: 'fp-label', text: s(wordsFrom === l ? 'fpWords' : 'fpWordsEnglish') }),
    words,
    h('p', { class: 'fp-label', text: s('fpNumber') }),
    h('p', { class: 'number', translate: 'no', dir: 'ltr', text: fp.number }),
    h('p', { class: 'hint', text: s('fpOtherLanguage') }),
    drawQr(h('div', { class: 'qr' }), qrText(fp), 'fingerprintQrLabel'),
    scan && scanner(fp, id, guard),
  );
  Promise.all([
    import('./sas-emoji.js'),
    wordsFrom === 'en' ? null : WORDLISTS[wordsFrom](),
  ]).then(([names, list]) => {
    const byLang = names.default[l] ?? names.default.en;
    fp.emojiIndices.forEach((e, i) => {
      // A name only for the picture it belongs to (the core's table is the same list).
      if (names.EMOJI[e] === fp.emoji[i]) emoji.children[i].querySelector('.name').textContent = byLang[e];
    });
    if (list) words.replaceChildren(...items(fp.wordIndices.map((w) => list.wordlist[w])));
  }, () => {
    // Offline or a failed load: the English words, and the emoji without their names.
    if (wordsFrom !== 'en') {
      words.lang = 'en';
      words.replaceChildren(...items(fp.words));
    }
  }).finally(() => {
    box.removeAttribute('aria-busy');
    box.dataset.ready = 'true';
  });
  return box;
}

// ---------------------------------------------------------------- scanning

/** Why the camera did not start, as a message key. */
function cameraError(e) {
  switch (e?.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'scanDenied';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'scanNoCamera';
    case 'NotReadableError':
    case 'AbortError':
      return 'scanBusy';
    default:
      return 'scanFailed';
  }
}

/**
 * A decoder of video frames: `(video) → text or null`. The browser's BarcodeDetector
 * where it reads QR codes, else the decoder of the vendored `qr` package.
 */
async function frameDecoder() {
  if (typeof globalThis.BarcodeDetector === 'function') {
    try {
      if ((await globalThis.BarcodeDetector.getSupportedFormats()).includes('qr_code')) {
        const detector = new globalThis.BarcodeDetector({ formats: ['qr_code'] });
        const read = async (video) => (await detector.detect(video))[0]?.rawValue ?? null;
        return { kind: 'native', read };
      }
    } catch {
      // fall through to the page's own decoder
    }
  }
  const { decodeQR } = await import('./vendor/qr/decode.js');
  const canvas = document.createElement('canvas');
  const g = canvas.getContext('2d', { willReadFrequently: true });
  const read = async (video) => {
    // At most 800 px on the long side: enough for a QR filling part of the frame, and
    // cheap on a slow phone.
    const scale = Math.min(1, 800 / Math.max(video.videoWidth, video.videoHeight));
    const width = Math.round(video.videoWidth * scale);
    const height = Math.round(video.videoHeight * scale);
    if (!width || !height) return null;
    canvas.width = width;
    canvas.height = height;
    g.drawImage(video, 0, 0, width, height);
    try {
      return decodeQR({ width, height, data: g.getImageData(0, 0, width, height).data });
    } catch {
      return null; // no QR in this frame
    }
  };
  return { kind: 'qr', read };
}

function scanner(fp, id, guard) {
  const expected = qrText(fp);
  const result = h('p', { class: 'scan-result', id: `${id}-scan-result` });
  const status = h('p', { class: 'status', id: `${id}-scan-status`, 'aria-live': 'polite' });
  const video = h('video', { class: 'camera', muted: true, playsinline: true, autoplay: true, hidden: true, 'aria-label': s('scanVideoLabel') });
  video.muted = true; // the attribute alone only sets the default
  let stream = null;
  let timer = null;
  const stop = () => {
    clearTimeout(timer);
    timer = null;
    for (const track of stream?.getTracks() ?? []) track.stop();
    stream = null;
    video.srcObject = null;
    video.hidden = true;
    stopButton.hidden = true;
    startButton.hidden = false;
  };
  const verdict = (same) => {
    stop();
    status.textContent = '';
    result.className = `scan-result ${same ? 'match' : 'mismatch'}`;
    result.setAttribute('role', same ? 'status' : 'alert');
    result.textContent = s(same ? 'scanMatch' : 'scanMismatch');
    const next = guard && document.getElementById(guard);
    if (next) next.disabled = !same;
  };
  const start = async () => {
    result.textContent = '';
    result.className = 'scan-result';
    result.removeAttribute('role');
    if (!navigator.mediaDevices?.getUserMedia) {
      status.textContent = s('scanNoCamera');
      return;
    }
    status.textContent = s('scanStarting');
    startButton.hidden = true;
    let decoder;
    try {
      [stream, decoder] = await Promise.all([
        navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' }, audio: false }),
        frameDecoder(),
      ]);
    } catch (e) {
      for (const track of stream?.getTracks() ?? []) track.stop();
      stream = null;
      startButton.hidden = false;
      status.textContent = s(e instanceof DOMException ? cameraError(e) : 'scanFailed');
      return;
    }
    onLeave(stop);
    video.dataset.decoder = decoder.kind;
    video.srcObject = stream;
    video.hidden = false;
    stopButton.hidden = false;
    status.textContent = s('scanHow');
    await video.play().catch(() => {});
    const tick = async () => {
      if (!stream) return;
      const text = await decoder.read(video).catch(() => null);
      if (!stream) return;
      if (text === null) {
        timer = setTimeout(tick, 150);
      } else if (!text.startsWith(QR_PREFIX)) {
        status.textContent = s('scanNotOurs');
        timer = setTimeout(tick, 150);
      } else {
        verdict(text === expected);
      }
    };
    tick();
  };
  const startButton = h('button', { type: 'button', id: `${id}-scan`, class: 'scan', text: s('scanTheirCode'), onclick: start });
  const stopButton = h('button', { type: 'button', class: 'secondary', id: `${id}-scan-stop`, hidden: true, text: s('scanStop'), onclick: () => {
    stop();
    status.textContent = '';
  } });
  return h('div', { class: 'scanner' }, startButton, video, stopButton, status, result);
}
