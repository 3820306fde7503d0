import { buildConfig } from './build-config';
import { resolveOptions } from './resolve';

describe('write and upload options', () => {
  const load = (flags: Record<string, unknown>) =>
    buildConfig(resolveOptions({ flags: { 'cache-upstream-url': [], ...flags }, env: {} }), { hostname: 'box', tempDir: '/tmp' });
  const key = 'uploader-1:' + Buffer.alloc(32, 7).toString('base64');

  it('defaults the put token to the get token', () => {
    expect(load({ 'cache-get-token': 'g' }).cache.putToken).toBe('g');
    expect(load({ 'cache-get-token': 'g', 'cache-put-token': 'p' }).cache.putToken).toBe('p');
    expect(load({}).cache.putToken).toBeUndefined();
  });

  it('reads the put token from the environment too', () => {
    const config = buildConfig(resolveOptions({ flags: { 'cache-upstream-url': [] }, env: { CACHE_PUT_TOKEN: 'from-env' } }));
    expect(config.cache.putToken).toBe('from-env');
  });

  it('warns at start when writes are enabled and no token protects them', () => {
    const open = /anyone who can reach this cache can delete from it and publish store paths signed with its key/;
    expect(load({ 'cache-allow-put-verb': 'true' }).warnings.join('\n')).toMatch(open);
    expect(load({ 'cache-allow-delete-verb': 'true' }).warnings.join('\n')).toMatch(open);
    expect(load({ 'cache-allow-put-verb': 'true', 'cache-get-token': 'g' }).warnings.join('\n')).not.toMatch(open);
    expect(load({ 'cache-allow-put-verb': 'true', 'cache-put-token': 'p' }).warnings.join('\n')).not.toMatch(open);
    expect(load({}).warnings.join('\n')).not.toMatch(open);
  });

  it('requires a trusted key with --cache-require-trusted-signature, and refuses malformed keys', () => {
    expect(() => load({ 'cache-require-trusted-signature': 'true' })).toThrow(/needs at least one --cache-upload-trusted-key/);
    expect(() => load({ 'cache-upload-trusted-key': ['not-a-key'] })).toThrow(/--cache-upload-trusted-key/);
    const config = load({ 'cache-require-trusted-signature': 'true', 'cache-upload-trusted-key': [key] });
    expect(config.cache).toMatchObject({ requireTrustedSignature: true, uploadTrustedKeys: [key] });
    const env = buildConfig(
      resolveOptions({
        flags: { 'cache-upstream-url': [] },
        env: { CACHE_REQUIRE_TRUSTED_SIGNATURE: 'true', CACHE_UPLOAD_TRUSTED_KEYS: `${key},${key.replace('uploader', 'other')}` },
      }),
    );
    expect(env.cache.uploadTrustedKeys).toHaveLength(2);
  });
});
