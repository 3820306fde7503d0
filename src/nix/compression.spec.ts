import { narInfoFixtures } from 'test/fixtures/nix/fixtures';
import { Compression, COMPRESSIONS, compressionFromExtension, isCompression, narExtension } from './compression';

describe('compression', () => {
  it('names NAR files as Nix does for the methods it wrote', () => {
    for (const { compression, text } of narInfoFixtures()) {
      const url = /^URL: (.*)$/m.exec(text)?.[1];
      const extension = narExtension(compression);
      expect(url).toMatch(new RegExp(`\\.nar${extension ? `\\.${extension}` : ''}$`));
    }
  });

  it.each<[Compression, string]>([
    ['bzip2', 'bz2'],
    ['gzip', 'gz'],
    ['br', 'br'],
    ['lz4', 'lz4'],
    ['lzip', 'lzip'],
  ])('gives %s the extension %s', (compression, extension) => {
    expect(narExtension(compression)).toBe(extension);
  });

  it('maps every extension back to its compression', () => {
    for (const compression of COMPRESSIONS) {
      expect(compressionFromExtension(narExtension(compression))).toBe(compression);
    }
  });

  it('reads a missing extension as none and an unknown one as null', () => {
    expect(compressionFromExtension(undefined)).toBe('none');
    expect(compressionFromExtension('')).toBe('none');
    expect(compressionFromExtension('rar')).toBeNull();
    expect(compressionFromExtension('.xz')).toBeNull();
  });

  it('knows the compression names and nothing else', () => {
    expect(COMPRESSIONS.every(isCompression)).toBe(true);
    expect(isCompression('zst')).toBe(false);
    expect(isCompression('XZ')).toBe(false);
    expect(isCompression('')).toBe(false);
  });
});
