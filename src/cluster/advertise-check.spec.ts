import { judgeSelfCheck } from './advertise-check';

describe('judgeSelfCheck', () => {
  it('passes when this instance answered with its own id', () => {
    expect(judgeSelfCheck('me', { status: 200, body: { id: 'me' } })).toEqual({ ok: true });
  });

  it('fails when another ncps instance answered (the load balancer, or a shared name)', () => {
    expect(judgeSelfCheck('me', { status: 200, body: { id: 'someone-else' } })).toEqual({
      ok: false,
      reason: expect.stringMatching(/^another ncps instance answered/),
    });
  });

  it('fails when nothing answered, naming why', () => {
    expect(judgeSelfCheck('me', { error: 'ENOTFOUND' })).toEqual({ ok: false, reason: 'unreachable: ENOTFOUND' });
  });

  it.each([401, 404, 302, 503])('fails on HTTP %p (another service, other tokens, a redirect)', (status) => {
    expect(judgeSelfCheck('me', { status })).toEqual({ ok: false, reason: expect.stringContaining(`HTTP ${status}`) });
  });

  it.each([undefined, 'me', { id: 7 }, {}])('fails on a 200 that is not an instance id (%p)', (body) => {
    expect(judgeSelfCheck('me', { status: 200, body })).toEqual({ ok: false, reason: 'the answer is not an ncps instance id' });
  });
});
