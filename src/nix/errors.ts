/**
 * Malformed protocol text: a hash, store path, narinfo, key or signature that Nix would not accept.
 * Messages are short, name the offending field, and never echo secret key material.
 */
export class NixFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NixFormatError';
  }
}
