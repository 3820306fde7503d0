/**
 * What `ncps fsck` can find wrong between the database and storage. Each kind names one way they
 * drift apart, and its repair (see FsckRepairs) is what makes that key servable again or frees it.
 */
export const FINDING_KINDS = [
  /** A nar_files row whose object is gone from storage (deleted by hand, storage restored). */
  'missing-object',
  /** An uploaded narinfo whose NAR is gone, with no upstream to fetch it from again: it cannot be served. */
  'unservable-narinfo',
  /** A stored object whose size differs from its nar_files row or its narinfo (truncated, replaced). */
  'size-mismatch',
  /** A stored object whose bytes do not hash to its FileHash (bit rot, edited by hand); --verify-content only. */
  'corrupt-object',
  /** A NAR file (row and object) that no narinfo points at, older than the upload grace period. */
  'unreferenced-nar',
  /** A stored object with neither a nar_files row nor a narinfo pointing at it: space nothing can use. */
  'orphan-object',
  /** A stored object a narinfo points at but without its nar_files row: served, but invisible to the LRU. */
  'untracked-object',
] as const;

export type FindingKind = (typeof FINDING_KINDS)[number];

/** What happened to a finding: only found (no --repair), repaired, or left because it is in use. */
export type FindingOutcome = 'found' | 'repaired' | 'in-use' | 'gone';

export interface Finding {
  kind: FindingKind;
  /** The storage key (`nar/<hash>.nar.xz`) or, for a narinfo, `<store path hash>.narinfo`. */
  key: string;
  /** One line for a person: what disagrees with what. */
  detail: string;
  outcome: FindingOutcome;
  /** With --repair: what was done (or why nothing was). */
  action?: string;
}

export interface FsckOptions {
  /** Delete (or, for an untracked object, record) what cannot be served, under the LRU's locks. */
  repair: boolean;
  /** Stream every stored NAR through sha256 and compare with its FileHash. */
  verifyContent: boolean;
}

export type FsckPhase = 'nar-files' | 'narinfos' | 'objects';

export interface FsckProgress {
  phase: FsckPhase;
  done: number;
  /** Unknown for the storage listing. */
  total?: number;
}

/** Callbacks through which a run tells its reporter what it does, as it does it. */
export interface FsckListener {
  finding?(finding: Finding): void;
  progress?(progress: FsckProgress): void;
}

export interface FsckCounts {
  /** nar_files rows, narinfos and stored objects looked at. */
  narFiles: number;
  narinfos: number;
  objects: number;
  /** Bytes streamed through sha256 (--verify-content). */
  bytesVerified: number;
  /** Objects --verify-content could not check: no FileHash known (a compressed NAR whose narinfo had none). */
  unverifiable: number;
}

export interface FsckSummary {
  /** No finding left: nothing was found, or everything found was repaired. */
  clean: boolean;
  counts: FsckCounts;
  /** Per kind: how many were found, and how many of them repaired. */
  byKind: Record<FindingKind, { found: number; repaired: number }>;
  /** Findings not repaired (none with --repair unless something was in use). */
  left: number;
  /** The first findings, for the JSON report (the count per kind is always complete). */
  findings: Finding[];
  /** More findings than `findings` holds were made. */
  findingsTruncated: boolean;
}
