/**
 * UTF-8 byte length of a string without encoding it (no allocation; this runs several times per
 * event on the ingest path). Matches `new TextEncoder().encode(text).byteLength`: a surrogate
 * pair is 4 bytes, a lone surrogate 3 (it is encoded as U+FFFD).
 */
export function utf8Length(text: string): number {
  // Most of what is measured is ASCII, where bytes = UTF-16 units; the regex scan is native.
  if (!NON_ASCII.test(text)) return text.length;
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) continue;
    if (code < 0x800) {
      bytes += 1;
    } else if (code >= 0xd800 && code <= 0xdbff && isLowSurrogate(text.charCodeAt(i + 1))) {
      bytes += 2; // two UTF-16 units, four bytes
      i++;
    } else {
      bytes += 2;
    }
  }
  return bytes;
}

// Any UTF-16 unit above U+007F (a surrogate half included) needs more than one byte.
const NON_ASCII = /[\u0080-\uffff]/;

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

/** Byte length of a value serialised as JSON (what D1 and the queue will carry). */
export function jsonBytes(value: unknown): number {
  return utf8Length(JSON.stringify(value));
}
