/** Compression names a narinfo may carry (Nix's `compression` setting of binary cache stores). */
export const COMPRESSIONS = [
  'none',
  'xz',
  'zstd',
  'bzip2',
  'br',
  'gzip',
  'lz4',
  'lzip',
  'lzma',
  'lzop',
  'compress',
  'grzip',
  'lrzip',
] as const;

export type Compression = (typeof COMPRESSIONS)[number];

/**
 * NAR file extension (without the dot) per compression. Nix itself writes xz, bz2, zst, lzip, lz4 and
 * br, and a bare `.nar` for the rest; the others follow their tools so that every method gets its own
 * extension and the mapping can be inverted.
 */
const EXTENSIONS: Readonly<Record<Compression, string>> = {
  none: '',
  xz: 'xz',
  zstd: 'zst',
  bzip2: 'bz2',
  br: 'br',
  gzip: 'gz',
  lz4: 'lz4',
  lzip: 'lzip',
  lzma: 'lzma',
  lzop: 'lzo',
  compress: 'Z',
  grzip: 'grz',
  lrzip: 'lrz',
};

const BY_EXTENSION = new Map(COMPRESSIONS.map((compression) => [EXTENSIONS[compression], compression]));

export function isCompression(text: string): text is Compression {
  return (COMPRESSIONS as readonly string[]).includes(text);
}

/** `xz` for `.nar.xz`; '' for `none` (a bare `.nar`). */
export function narExtension(compression: Compression): string {
  return EXTENSIONS[compression];
}

/** Inverse of narExtension (extension without the dot); missing or '' is `none`, unknown is null. */
export function compressionFromExtension(extension: string | undefined): Compression | null {
  return BY_EXTENSION.get(extension ?? '') ?? null;
}
