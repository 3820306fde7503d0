import { Injectable } from '@nestjs/common';
import { readFile } from 'node:fs/promises';

/** Reads the operator's secret key file (`--cache-secret-key-path`): the signing domain's only file I/O. */
@Injectable()
export class SecretKeyFile {
  /** The file's text; throws an Error naming the path and the errno code, never the content. */
  async read(path: string): Promise<string> {
    try {
      return await readFile(path, 'utf8');
    } catch (e) {
      throw new Error(`--cache-secret-key-path: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  }
}
