import { permanentProblem } from './redis.driver';

describe('permanentProblem', () => {
  const error = (message: string, code?: string): Error & { code?: string } => Object.assign(new Error(message), code ? { code } : {});

  it('explains refused credentials, naming the user and never anything else of the configuration', () => {
    const problem = permanentProblem(error('WRONGPASS invalid username-password pair or user is disabled.'), 'r:6379', 'ncps');
    expect(problem).toBe(
      'Redis at r:6379 refused the credentials of user "ncps" (WRONGPASS invalid username-password pair or user is disabled.): check --cache-redis-username and --cache-redis-password',
    );
    expect(permanentProblem(error('NOAUTH Authentication required.'), 'r:6379', undefined)).toContain('user "default"');
  });

  it('explains an untrusted certificate and where to give the CA', () => {
    expect(permanentProblem(error('self-signed certificate in certificate chain', 'SELF_SIGNED_CERT_IN_CHAIN'), 'r:6380', undefined)).toBe(
      'Redis at r:6380: TLS certificate not trusted (SELF_SIGNED_CERT_IN_CHAIN: self-signed certificate in certificate chain): give its CA with --cache-redis-ca-file or NODE_EXTRA_CA_CERTS',
    );
  });

  it('explains plain servers given as a cluster', () => {
    expect(permanentProblem(error('ERR This instance has cluster support disabled'), 'a:1', undefined)).toMatch(
      /is not a Redis Cluster.*--cache-redis-redlock-quorum/,
    );
  });

  it('leaves passing troubles to the retries and the breaker', () => {
    expect(permanentProblem(error('connect ECONNREFUSED 127.0.0.1:6379', 'ECONNREFUSED'), 'r', undefined)).toBeUndefined();
    expect(permanentProblem(error('Connection is closed.'), 'r', undefined)).toBeUndefined();
  });
});
