import { resolve } from 'node:path';

/** `sqlite:PATH`, `sqlite3:PATH`, `sqlite:///abs/path` or `sqlite://rel` → a filesystem path. */
export function sqlitePath(url: string): string {
  const rest = url
    .replace(/^sqlite3?:/i, '')
    .replace(/^\/\/(?=\/)/, '')
    .replace(/^\/\//, '');
  const path = rest.split('?')[0];
  if (path === '') throw new Error('the sqlite URL has no path');
  return path === ':memory:' ? path : resolve(path);
}
