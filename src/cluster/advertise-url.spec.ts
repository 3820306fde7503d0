import { defaultAdvertiseUrl, ownerRef, parseOwnerRef } from './advertise-url';

describe('defaultAdvertiseUrl', () => {
  it.each([
    ['', 'http://box:8501'],
    ['0.0.0.0', 'http://box:8501'],
    ['::', 'http://box:8501'],
    ['0:0:0:0:0:0:0:0', 'http://box:8501'],
    ['0::0', 'http://box:8501'],
  ])('uses the machine hostname when --server-addr host is %p (every interface)', (host, expected) => {
    expect(defaultAdvertiseUrl(host, 8501, 'box')).toBe(expected);
  });

  it.each([
    ['10.1.2.3', 'http://10.1.2.3:8501'],
    ['127.0.0.1', 'http://127.0.0.1:8501'],
    ['fd00::2', 'http://[fd00::2]:8501'],
    ['::1', 'http://[::1]:8501'],
    ['ncps-1.internal', 'http://ncps-1.internal:8501'],
  ])('uses the host --server-addr names (%p)', (host, expected) => {
    expect(defaultAdvertiseUrl(host, 8501, 'box')).toBe(expected);
  });

  it('brackets an IPv6 machine hostname and keeps the listening port', () => {
    expect(defaultAdvertiseUrl('', 40123, 'fe80::1')).toBe('http://[fe80::1]:40123');
  });
});

describe('owner references', () => {
  it('carry the URL and the instance id', () => {
    expect(parseOwnerRef(ownerRef('http://a:8501/cache', 'id-1'))).toEqual({ url: 'http://a:8501/cache', instanceId: 'id-1' });
  });

  it('are a path on the URL, so an earlier version asking for its peer route gets a 404', () => {
    expect(`${ownerRef('http://a:8501', 'id-1')}/_ncps/downloads/nar/x.nar`).toBe(
      'http://a:8501/_ncps/instance/id-1/_ncps/downloads/nar/x.nar',
    );
  });

  it.each(['http://a:8501', 'http://a:8501/_ncps/instance/', 'http://a:8501/_ncps/instance/x/y'])(
    "read %p (an earlier version's) as a URL alone",
    (ref) => {
      expect(parseOwnerRef(ref)).toEqual({ url: ref });
    },
  );
});
