import { IncomingMessage } from 'node:http';
import { requestId } from './request-id';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function request(headers: IncomingMessage['headers'] = {}): IncomingMessage {
  return { headers } as IncomingMessage;
}

describe('requestId', () => {
  it('gives each request without an id a fresh one, shaped like a UUID (v4)', () => {
    const ids = Array.from({ length: 1000 }, () => requestId(request()));
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(UUID);
  });

  it('keeps a sane X-Request-Id from the caller', () => {
    expect(requestId(request({ 'x-request-id': 'lb-7.a_b' }))).toBe('lb-7.a_b');
  });

  it('replaces one that could forge a log line or is too long', () => {
    for (const given of ['a b', 'x\ny', 'x'.repeat(65), '']) {
      expect(requestId(request({ 'x-request-id': given }))).toMatch(UUID);
    }
  });
});
