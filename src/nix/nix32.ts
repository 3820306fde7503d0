import { NixFormatError } from './errors';

/** Nix's base-32 alphabet: RFC 4648's letters are not used, and e, o, u, t are left out. */
export const NIX32_ALPHABET = '0123456789abcdfghijklmnpqrsvwxyz';

const DIGITS = new Map([...NIX32_ALPHABET].map((char, value) => [char, value]));

/** Characters for `byteLength` bytes: ceil(8n/5), i.e. Nix's `(8n-1)/5+1` (32 for 20 bytes, 52 for 32). */
export function nix32Length(byteLength: number): number {
  return Math.ceil((byteLength * 8) / 5);
}

/**
 * Nix numbers the bits little-endian from byte 0 and prints the highest 5-bit group first, so this is
 * not RFC 4648 base32 with another alphabet: character `n` from the right holds bits `5n..5n+4`.
 */
export function nix32Encode(bytes: Buffer): string {
  let out = '';
  for (let n = nix32Length(bytes.length) - 1; n >= 0; n--) {
    const bit = n * 5;
    const i = bit >> 3;
    const shift = bit & 7;
    const high = i + 1 < bytes.length ? bytes[i + 1] << (8 - shift) : 0;
    out += NIX32_ALPHABET[((bytes[i] >> shift) | high) & 0x1f];
  }
  return out;
}

/** Inverse of nix32Encode; rejects unknown characters, impossible lengths and set padding bits, as Nix does. */
export function nix32Decode(text: string): Buffer {
  const byteLength = Math.floor((text.length * 5) / 8);
  if (nix32Length(byteLength) !== text.length) throw new NixFormatError(`invalid nix32 length ${text.length}`);
  const out = Buffer.alloc(byteLength);
  for (let n = 0; n < text.length; n++) {
    const char = text[text.length - 1 - n];
    const digit = DIGITS.get(char);
    if (digit === undefined) throw new NixFormatError(`invalid nix32 character '${char}'`);
    const bit = n * 5;
    const i = bit >> 3;
    const shift = bit & 7;
    out[i] |= digit << shift; // a Buffer keeps the low 8 bits
    const carry = digit >> (8 - shift);
    if (i + 1 < byteLength) out[i + 1] |= carry;
    else if (carry !== 0) throw new NixFormatError('nix32 value has bits beyond its length');
  }
  return out;
}
