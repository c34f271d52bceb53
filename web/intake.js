// What the upload screen checks before any work: the server's size limit, empty files,
// the real type of a file (read from its first bytes, not trusted from its name), the
// category that type suggests, and names that say nothing (camera and chat-app names).
// Loaded with screens.js, after login.

import { request } from './api.js';

/**
 * The server's limits (`GET /v1/limits`), asked each time a file is chosen (a few bytes;
 * a server restarted with other limits is believed at once). `maxFileBytes` is the largest
 * original file whose ciphertext fits `max_document_bytes`: age STREAM adds a 16-byte
 * nonce and a 16-byte tag per 64 KiB chunk (C2SP age, "Payload").
 */
export async function serverLimits() {
  const l = await request('GET', '/v1/limits');
  const body = Math.max(0, l.max_document_bytes - 16);
  const chunks = Math.ceil(body / (65536 + 16));
  return { maxFileBytes: Math.max(0, body - 16 * chunks), quotaBytes: l.quota_bytes };
}

const starts = (b, sig, at = 0) => sig.every((v, i) => b[at + i] === v);
const ascii = (b, from, to) => String.fromCharCode(...b.subarray(from, to));
const HEIF_BRANDS = ['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'mif1', 'msf1'];
const BY_EXTENSION = {
  jpg: 'image/jpeg', jpeg: 'image/jpeg', png: 'image/png', webp: 'image/webp', heic: 'image/heic', heif: 'image/heic',
  pdf: 'application/pdf',
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  pptx: 'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  odt: 'application/vnd.oasis.opendocument.text',
  ods: 'application/vnd.oasis.opendocument.spreadsheet',
  odp: 'application/vnd.oasis.opendocument.presentation',
  doc: 'application/msword', txt: 'text/plain',
};
const extension = (name) => (/\.([a-z0-9]{1,5})$/i.exec(name)?.[1] ?? '').toLowerCase();

/**
 * The type of a file from its first bytes (magic numbers): JPEG, PNG, WebP, HEIC, PDF;
 * ZIP containers are told apart by their first entries (ODF's `mimetype`, OOXML's part
 * folders), else by extension. Anything else: by extension, else the browser's guess.
 */
export async function sniffType(file) {
  const b = new Uint8Array(await file.slice(0, 4096).arrayBuffer());
  if (starts(b, [0xff, 0xd8, 0xff])) return 'image/jpeg';
  if (starts(b, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'image/png';
  if (ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 12) === 'WEBP') return 'image/webp';
  if (ascii(b, 4, 8) === 'ftyp' && HEIF_BRANDS.includes(ascii(b, 8, 12))) return 'image/heic';
  if (ascii(b, 0, 5) === '%PDF-') return 'application/pdf';
  const byName = BY_EXTENSION[extension(file.name)];
  if (starts(b, [0x50, 0x4b, 0x03, 0x04])) {
    // ODF stores an uncompressed `mimetype` entry first (OASIS ODF 1.2, part 3, 3.3).
    if (ascii(b, 30, 38) === 'mimetype') {
      const m = /^application\/vnd\.oasis\.opendocument\.[a-z.-]+/.exec(ascii(b, 38, 38 + 80));
      if (m) return m[0];
    }
    const head = ascii(b, 0, b.length);
    if (head.includes('word/')) return BY_EXTENSION.docx;
    if (head.includes('xl/')) return BY_EXTENSION.xlsx;
    if (head.includes('ppt/')) return BY_EXTENSION.pptx;
    return byName && byName.startsWith('application/vnd.') ? byName : 'application/zip';
  }
  return byName ?? (file.type || 'application/octet-stream');
}

/** The category a type suggests: a photo is most often of an ID paper; the rest "other". */
export const categoryFor = (mime) => (mime.startsWith('image/') ? 'identity' : 'other');

// Names a camera, a phone or a chat app gives: they say nothing of the paper.
const CAMERA_NAMES = [
  /^IMG[-_ ]?\d/i, /^DSC[NF_]?\d/i, /^DCIM/i, /^PXL_\d/i, /^MVIMG_\d/i, /^P\d{7}/,
  /^Screenshot[ _-]/i, /^Capture d.écran/i, /^WhatsApp Image /i, /^Photo[ _-]?\d/i,
  /^image\d*$/i, /^scan[ _-]?\d*$/i, /^\d{8}[_-]\d{6}/, /^\d+$/,
];

/** Whether `name` (without its extension) is a camera or app name, not a meaningful one. */
export const isCameraName = (name) => CAMERA_NAMES.some((re) => re.test(name.trim()));
