import { decodeBase64 } from './base64';

describe('decodeBase64', () => {
  it('decodes padded standard base64', () => {
    expect(decodeBase64('aGk/Pz4+')?.toString('latin1')).toBe('hi??>>');
    expect(decodeBase64('aGk=')?.toString()).toBe('hi');
    expect(decodeBase64('')).toEqual(Buffer.alloc(0));
  });

  it.each([
    ['missing padding', 'aGk'],
    ['URL-safe characters', 'aGk_Pz4-'],
    ['characters outside the alphabet', 'aG!k'],
    ['whitespace', 'aGk= '],
    ['non-zero padding bits', 'aGl='],
  ])('rejects %s', (_, text) => {
    expect(decodeBase64(text)).toBeNull();
  });
});
