/** The Basic `Authorization` of a login and password. */
export function basicAuthorization(login: string, password: string): string {
  return `Basic ${Buffer.from(`${login}:${password}`).toString('base64')}`;
}

/** The Basic `Authorization` of the credentials a URL carries (`http://user:pass@host`, percent-decoded), if any. */
export function urlAuthorization(url: URL): string | undefined {
  if (url.username === '' && url.password === '') return undefined;
  return basicAuthorization(decodeURIComponent(url.username), decodeURIComponent(url.password));
}
