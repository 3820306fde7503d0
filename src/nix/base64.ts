/**
 * Strict RFC 4648 base64 with padding, or null. `Buffer.from(s, 'base64')` silently skips invalid
 * characters and accepts the URL-safe alphabet, which would let corrupt hashes, keys and signatures
 * through; only a string that re-encodes to itself is accepted, so every value has one spelling.
 */
export function decodeBase64(text: string): Buffer | null {
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : null;
}
