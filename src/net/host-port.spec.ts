import { parsePort, splitHostPort } from './host-port';

describe('splitHostPort', () => {
  it.each([
    ['redis:6380', { host: 'redis', port: 6380 }],
    ['[::1]:6379', { host: '::1', port: 6379 }],
    ['[::1]', { host: '::1', port: undefined }],
    ['db.example.com', { host: 'db.example.com', port: undefined }],
    [':8501', { host: '', port: 8501 }],
  ])('reads %s', (text, expected) => {
    expect(splitHostPort(text)).toEqual(expected);
  });

  it.each(['a:b:c', 'h:', 'h:70000', 'h:0', '::1:80', '[::1]x', 'h:-1'])('refuses %s', (text) => {
    expect(() => splitHostPort(text)).toThrow();
  });

  it('takes port 0 only when asked to (a listener on any free port)', () => {
    expect(splitHostPort('127.0.0.1:0', { allowZero: true })).toEqual({ host: '127.0.0.1', port: 0 });
    expect(() => splitHostPort('127.0.0.1:0')).toThrow('port must be 1-65535');
  });
});

describe('parsePort', () => {
  it('reads 1-65535 and refuses the rest', () => {
    expect(parsePort('65535')).toBe(65535);
    for (const bad of ['0', '65536', '', '8o', '1e3', '123456']) expect(() => parsePort(bad)).toThrow('port must be 1-65535');
  });
});
