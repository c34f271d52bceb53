// Photos of papers made small before they are encrypted: a phone's 12-megapixel photo of
// an ID card is 3–5 MB, minutes on the networks the people Coffre serves use. A photo is
// drawn again at most 2,000 px on its long side and encoded as JPEG, which also leaves
// behind everything the camera wrote beside the pixels (EXIF: place, time, phone model);
// several photos of one paper become one PDF, a page per photo. Nothing here is sent:
// the result goes to the upload's encryption like any chosen file. Loaded with screens.js,
// after login; pdf-lib only when a PDF is made.

/** The long side of a prepared photo, in pixels. */
export const LONG_SIDE = 2000;
/** The size a prepared photo aims at (24 s at 100 kbit/s); the JPEG quality steps down until it fits. */
export const TARGET_BYTES = 300_000;
const QUALITIES = [0.85, 0.78, 0.7, 0.62, 0.55];
// JPEG and WebP are what cameras and chat apps write; HEIC is decoded where the browser
// can (else it is kept as it is). PNG is most often a screenshot or a scan, whose sharp
// text JPEG would blur: it is redrawn only when larger than LONG_SIDE.
const PHOTOS = ['image/jpeg', 'image/webp', 'image/heic'];

/** Whether a file of type `mime` and `width`×`height` px is worth preparing. */
export const needsPreparing = (mime, width, height) =>
  PHOTOS.includes(mime) || (mime === 'image/png' && Math.max(width, height) > LONG_SIDE);

/** A page of a PDF that is not an image this browser can draw. */
export class PageError extends Error {
  constructor() {
    super('page');
    this.key = 'errPageType';
  }
}

async function decode(file) {
  // EXIF orientation applied, so a photo taken sideways stays upright once its EXIF is gone.
  return createImageBitmap(file, { imageOrientation: 'from-image' });
}

async function encode(bitmap, width, height, quality) {
  const canvas = typeof OffscreenCanvas === 'function'
    ? new OffscreenCanvas(width, height)
    : Object.assign(document.createElement('canvas'), { width, height });
  const g = canvas.getContext('2d');
  g.fillStyle = '#fff'; // a transparent PNG's background, as on paper
  g.fillRect(0, 0, width, height);
  g.imageSmoothingEnabled = true;
  g.imageSmoothingQuality = 'high';
  g.drawImage(bitmap, 0, 0, width, height);
  if (canvas.convertToBlob) return canvas.convertToBlob({ type: 'image/jpeg', quality });
  return new Promise((resolve, reject) =>
    canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('encode'))), 'image/jpeg', quality));
}

/**
 * The photo `file` (of sniffed type `mime`) made small: a JPEG File at most LONG_SIDE px
 * on its long side, at the best quality that fits TARGET_BYTES (the lowest quality if
 * none does), with no metadata. The file itself when it is not a photo, is already small
 * and clean enough (see needsPreparing), or cannot be decoded by this browser. For a
 * page of a PDF (`forPdf`), every image is redrawn, and one this browser cannot decode
 * throws PageError.
 */
export async function preparePhoto(file, mime, { forPdf = false } = {}) {
  if (!mime.startsWith('image/')) {
    if (forPdf) throw new PageError();
    return file;
  }
  let bitmap;
  try {
    bitmap = await decode(file);
  } catch {
    if (forPdf) throw new PageError();
    return file; // e.g. HEIC where the browser has no decoder: sent as it is
  }
  try {
    if (!forPdf && !needsPreparing(mime, bitmap.width, bitmap.height)) return file;
    const scale = Math.min(1, LONG_SIDE / Math.max(bitmap.width, bitmap.height));
    const width = Math.max(1, Math.round(bitmap.width * scale));
    const height = Math.max(1, Math.round(bitmap.height * scale));
    let blob;
    for (const q of QUALITIES) {
      blob = await encode(bitmap, width, height, q);
      if (blob.size <= TARGET_BYTES) break;
    }
    const name = file.name.replace(/\.[^.]*$/, '') + '.jpg';
    return new File([blob], name, { type: 'image/jpeg', lastModified: file.lastModified });
  } finally {
    bitmap.close();
  }
}

/**
 * One PDF of the photos `files` (Files of type image/jpeg, already prepared), a page per
 * photo in order, each page the photo's size at 150 dpi (2,000 px: 33.9 cm, so a viewer's
 * "fit" shows it whole and it prints on A4 scaled). No dates, producer or title are
 * written (pdf-lib's `updateMetadata: false`).
 */
export async function photosToPdf(files, name) {
  const { PDFDocument } = await import('./vendor/pdf-lib.esm.min.js');
  const doc = await PDFDocument.create({ updateMetadata: false });
  for (const f of files) {
    const image = await doc.embedJpg(new Uint8Array(await f.arrayBuffer()));
    const w = (image.width * 72) / 150;
    const h = (image.height * 72) / 150;
    doc.addPage([w, h]).drawImage(image, { x: 0, y: 0, width: w, height: h });
  }
  // Without object streams (PDF 1.5): older viewers on cheap phones open it, and one can
  // read in the file itself that it holds only the pages and their JPEGs.
  const bytes = await doc.save({ useObjectStreams: false });
  return new File([bytes], `${name}.pdf`, { type: 'application/pdf', lastModified: files[0]?.lastModified ?? 0 });
}
