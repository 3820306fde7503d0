import { readFile } from 'node:fs/promises';

export interface NetrcCredentials {
  login: string;
  password: string;
}

export interface Netrc {
  /** By lower-case host name; the first entry for a host wins, as in curl. */
  machines: Map<string, NetrcCredentials>;
  /** The `default` entry, for hosts no `machine` names. */
  fallback?: NetrcCredentials;
}

interface Entry {
  machine: string | null; // null for `default`
  login?: string;
  password?: string;
}

/**
 * Parses the netrc format read by curl and Nix: whitespace-separated `machine <host>`, `default`,
 * `login`, `password`, `account` tokens; double-quoted tokens with backslash escapes; `#` comments;
 * `macdef` bodies (up to the next empty line) skipped. An entry without a login is ignored.
 */
export function parseNetrc(text: string): Netrc {
  const netrc: Netrc = { machines: new Map() };
  const tokens = new Tokenizer(text);
  let entry: Entry | null = null;
  const finish = (): void => {
    if (entry?.login === undefined) return;
    const credentials = { login: entry.login, password: entry.password ?? '' };
    if (entry.machine === null) netrc.fallback ??= credentials;
    else if (!netrc.machines.has(entry.machine)) netrc.machines.set(entry.machine, credentials);
  };
  for (let token = tokens.next(); token !== null; token = tokens.next()) {
    switch (token) {
      case 'machine':
        finish();
        entry = { machine: (tokens.next() ?? '').toLowerCase() };
        break;
      case 'default':
        finish();
        entry = { machine: null };
        break;
      case 'login':
      case 'password': {
        const value = tokens.next();
        if (entry && value !== null) entry[token] = value;
        break;
      }
      case 'account':
        tokens.next();
        break;
      case 'macdef':
        finish();
        entry = null;
        tokens.skipMacro();
        break;
    }
  }
  finish();
  return netrc;
}

export function netrcCredentials(netrc: Netrc, hostname: string): NetrcCredentials | undefined {
  return netrc.machines.get(hostname.toLowerCase()) ?? netrc.fallback;
}

/** A missing file means no credentials (the default path `~/.netrc` usually does not exist). */
export async function loadNetrc(path: string): Promise<Netrc | null> {
  try {
    return parseNetrc(await readFile(path, 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

class Tokenizer {
  private pos = 0;

  constructor(private readonly text: string) {}

  next(): string | null {
    const text = this.text;
    for (;;) {
      while (this.pos < text.length && /\s/.test(text[this.pos])) this.pos++;
      if (this.pos >= text.length) return null;
      if (text[this.pos] !== '#') break;
      const eol = text.indexOf('\n', this.pos);
      this.pos = eol < 0 ? text.length : eol;
    }
    if (text[this.pos] === '"') return this.quoted();
    const start = this.pos;
    while (this.pos < text.length && !/\s/.test(text[this.pos])) this.pos++;
    return text.slice(start, this.pos);
  }

  /** Skips `macdef <name>` and the macro's lines, which end at the first empty line. */
  skipMacro(): void {
    this.next();
    const end = this.text.slice(this.pos).search(/\n[ \t]*\n/);
    this.pos = end < 0 ? this.text.length : this.pos + end + 1;
  }

  private quoted(): string {
    let value = '';
    this.pos++;
    while (this.pos < this.text.length && this.text[this.pos] !== '"') {
      if (this.text[this.pos] === '\\' && this.pos + 1 < this.text.length) this.pos++;
      value += this.text[this.pos++];
    }
    this.pos++;
    return value;
  }
}
