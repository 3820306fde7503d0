/** Downloaded or uploaded bytes that do not match what they claim to be: nothing is stored. */
export class IntegrityError extends Error {}

/** A body that ran past the largest size accepted for it (a cap, not a claimed size). */
export class SizeLimitError extends IntegrityError {}
