import { execFile } from 'node:child_process';
import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Drives the real Nix client (Debian's nix-bin, as root, no daemon) for end-to-end tests: builds
 * small stores, signs them, publishes them as file:// binary caches and copies through our server.
 */
export class NixWorkspace {
  private constructor(readonly dir: string) {}

  static async create(): Promise<NixWorkspace> {
    return new NixWorkspace(await mkdtemp(join(tmpdir(), 'ncps-nix-')));
  }

  async dispose(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }

  /** Runs a nix command with a fresh XDG cache (Nix caches narinfo lookups on disk) and no substituters. */
  async nix(cmd: string, args: string[], extraConfig = ''): Promise<{ stdout: string; stderr: string }> {
    const cache = await mkdtemp(join(this.dir, 'xdg-'));
    const env = {
      ...process.env,
      XDG_CACHE_HOME: cache,
      NIX_CONFIG: `experimental-features = nix-command\nsubstituters =\nsandbox = false\n${extraConfig}`,
    };
    return run(cmd, args, { env, maxBuffer: 16 * 1024 * 1024 });
  }

  /** Adds files with the given contents to a store; returns their store paths. */
  async addFiles(store: string, files: Record<string, string | Buffer>): Promise<string[]> {
    const src = join(this.dir, `src-${Math.random().toString(36).slice(2)}`);
    await mkdir(src, { recursive: true });
    const paths: string[] = [];
    for (const [name, content] of Object.entries(files)) {
      await writeFile(join(src, name), content);
      const { stdout } = await this.nix('nix-store', ['--store', store, '--add', join(src, name)]);
      paths.push(stdout.trim());
    }
    return paths;
  }

  /** Builds a derivation referencing `deps` (a closure of several paths); returns its output path. */
  async buildWithReferences(store: string, name: string, deps: string[]): Promise<string> {
    const file = join(this.dir, `${name}.nix`);
    const refs = deps.map((d) => `(builtins.storePath "${d}")`).join(' ');
    await writeFile(
      file,
      `let deps = [ ${refs} ]; in derivation {
  name = "${name}"; system = builtins.currentSystem; builder = "/bin/sh";
  args = [ "-c" "echo \${builtins.concatStringsSep " " (map toString deps)} > $out" ];
}\n`,
    );
    const { stdout } = await this.nix('nix-build', [
      '--store',
      store,
      file,
      '--no-out-link',
      '--option',
      'sandbox-paths',
      '/bin /lib /lib64 /usr',
    ]);
    return stdout.trim();
  }

  async generateKey(name: string): Promise<{ secretPath: string; publicKey: string }> {
    const sk = join(this.dir, `${name}.sk`);
    const pk = join(this.dir, `${name}.pk`);
    await this.nix('nix-store', ['--generate-binary-cache-key', name, sk, pk]);
    const { readFile } = await import('node:fs/promises');
    return { secretPath: sk, publicKey: (await readFile(pk, 'utf8')).trim() };
  }

  async sign(store: string, secretPath: string, paths: string[]): Promise<void> {
    await this.nix('nix', ['store', 'sign', '--store', store, '--key-file', secretPath, '-r', ...paths]);
  }

  /** Publishes paths (with their closures) as a file:// binary cache in the given compression. */
  async copyToFileCache(store: string, cacheDir: string, compression: string, paths: string[]): Promise<void> {
    await this.nix('nix', ['copy', '--store', store, '--to', `file://${cacheDir}?compression=${compression}`, ...paths]);
  }

  /** `nix copy --to` an HTTP cache (uploads through PUT); `extraConfig` is added to NIX_CONFIG (e.g. netrcConfig). */
  async copyToHttp(store: string, url: string, paths: string[], extraConfig = ''): Promise<void> {
    await this.nix('nix', ['copy', '--store', store, '--to', url, ...paths], extraConfig);
  }

  /** A fresh client store fetching paths from `url`, trusting only `trustedKey`. */
  async copyFromHttp(url: string, trustedKey: string, paths: string[], clientStore?: string, extraConfig = ''): Promise<string> {
    const store = clientStore ?? join(this.dir, `client-${Math.random().toString(36).slice(2)}`);
    await this.nix('nix', ['copy', '--store', store, '--from', url, ...paths], `trusted-public-keys = ${trustedKey}\n${extraConfig}`);
    return store;
  }

  /**
   * NIX_CONFIG lines making Nix send `password` (as Basic auth, user `nix`) to the host of `url`, from a
   * netrc file: how a Nix client presents a cache token.
   */
  async netrcConfig(url: string, password: string): Promise<string> {
    const file = join(this.dir, `netrc-${Math.random().toString(36).slice(2)}`);
    await writeFile(file, `machine ${new URL(url).hostname} login nix password ${password}\n`, { mode: 0o600 });
    return `netrc-file = ${file}\n`;
  }

  /** Contents of a store path's file inside a (chroot) store. */
  async readStoreFile(store: string, path: string): Promise<string> {
    const { readFile } = await import('node:fs/promises');
    return readFile(join(store, path), 'utf8');
  }
}
