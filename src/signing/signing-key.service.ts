import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { NCPS_CONFIG } from 'src/config/config.module';
import { NcpsConfig } from 'src/config/config';
import { ConfigRepository } from 'src/database';
import { SecretKeyFile } from './secret-key.file';
import {
  NarInfo,
  SecretKey,
  formatPublicKey,
  formatSecretKey,
  generateKeyPair,
  narInfoFingerprint,
  parseSecretKey,
  signFingerprint,
  toPublicKey,
} from 'src/nix';

const SECRET_KEY_ENTRY = 'secret_key';

/**
 * Signatures kept, by the sha256 of their fingerprint. A narinfo is signed on every hit (so the key in
 * use is always the one that signs), and Ed25519 signing is the largest single cost of a hit; a
 * fingerprint names the signed content exactly, so a remembered signature is never wrong. Keyed by
 * digest, not by the fingerprint itself (which lists every reference): about 1.5 MB in all.
 */
const REMEMBERED_SIGNATURES = 10_000;

/**
 * This cache's signing key: from --cache-secret-key-path, else the one kept in the database, else a
 * new one named `<hostname>-1`, stored so that a restart or another instance on the same database
 * signs with the same key.
 */
@Injectable()
export class SigningKeyService implements OnModuleInit {
  private readonly logger = new Logger(SigningKeyService.name);
  private key: SecretKey;
  private readonly signatures = new Map<string, string>();

  constructor(
    @Inject(NCPS_CONFIG) private readonly config: NcpsConfig,
    private readonly configRepository: ConfigRepository,
    private readonly keyFile: SecretKeyFile,
  ) {}

  async onModuleInit(): Promise<void> {
    this.key = await this.loadKey();
    this.logger.log({ key_name: this.key.name, public_key: this.publicKey }, 'signing key loaded');
  }

  get publicKey(): string {
    return formatPublicKey(toPublicKey(this.key));
  }

  get keyName(): string {
    return this.key.name;
  }

  /** The narinfo with our signature added (once) beside the signatures of others. */
  sign(info: NarInfo): NarInfo {
    return { ...info, sigs: [...this.othersOf(info.sigs), this.signatureOf(narInfoFingerprint(info))] };
  }

  /** The signatures not made with our key name (ours is made afresh whenever we serve). */
  othersOf(sigs: readonly string[]): string[] {
    return sigs.filter((sig) => !sig.startsWith(`${this.key.name}:`));
  }

  /** Least recently used first: a Map iterates in insertion order, and a hit is re-inserted. */
  private signatureOf(fingerprint: string): string {
    const digest = createHash('sha256').update(fingerprint).digest('base64');
    let signature = this.signatures.get(digest);
    if (signature !== undefined) this.signatures.delete(digest);
    else signature = signFingerprint(this.key, fingerprint);
    this.signatures.set(digest, signature);
    if (this.signatures.size > REMEMBERED_SIGNATURES) this.signatures.delete(this.signatures.keys().next().value as string);
    return signature;
  }

  private async loadKey(): Promise<SecretKey> {
    const path = this.config.cache.secretKeyPath;
    if (path) {
      const text = await this.keyFile.read(path);
      try {
        return parseSecretKey(text.trim());
      } catch {
        throw new Error(`--cache-secret-key-path: ${path} is not a Nix secret key (name:base64)`);
      }
    }
    const candidate = formatSecretKey(generateKeyPair(`${this.config.cache.hostname}-1`).secretKey);
    const stored = await this.configRepository.getOrInsert(SECRET_KEY_ENTRY, candidate);
    if (stored === candidate) this.logger.log('generated a new signing key and stored it in the database');
    return parseSecretKey(stored);
  }
}
