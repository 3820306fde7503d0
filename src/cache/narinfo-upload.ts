import { ConflictError, ForbiddenError } from 'src/common/errors';
import { NarInfoEntity } from 'src/database';
import { NarInfo, PublicKey, narInfoFingerprint, verifyNarInfo } from 'src/nix';
import { narInfoFromRow } from './narinfo-record';

/**
 * With --cache-require-trusted-signature, an upload is accepted only when a key the operator listed
 * signed it: the put token lets a client talk to us, not vouch for what it sends.
 */
export function assertTrustedUpload(info: NarInfo, required: boolean, trustedKeys: readonly PublicKey[]): void {
  if (!required || verifyNarInfo(info, trustedKeys)) return;
  throw new ForbiddenError(
    info.sigs.length === 0
      ? 'upload refused: the narinfo is not signed, and this cache accepts only narinfos signed by a trusted upload key'
      : 'upload refused: no signature of the narinfo verifies with a trusted upload key',
  );
}

/** The store path's identity as its signature sees it, plus CA (which a client trusts instead of a signature). */
const content = (info: NarInfo): string => `${narInfoFingerprint(info)};${info.ca ?? ''}`;

/**
 * What an upload does to the narinfo already stored for its hash: `store` it (none yet, or one uploaded
 * earlier, which the put token may replace), leave it `unchanged` (it came from upstream and says the
 * same thing: the upload is a no-op), or refuse it (it came from upstream and says something else, and
 * an upload never silently replaces what an upstream vouched for).
 */
export function uploadOutcome(existing: NarInfoEntity | null, upload: NarInfo): 'store' | 'unchanged' {
  if (!existing?.upstreamUrl) return 'store';
  if (content(narInfoFromRow(existing)) === content(upload)) return 'unchanged';
  throw new ConflictError('an upstream narinfo with different contents is stored for this path; an upload does not replace it');
}
