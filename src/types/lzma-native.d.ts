// The part of lzma-native (which ships no types) that ncps uses: streaming xz decoding.
declare module 'lzma-native' {
  import { Transform } from 'node:stream';

  export interface StreamOptions {
    /** Bytes the decoder may allocate (the dictionary); larger inputs fail. */
    memlimit?: number;
    /** liblzma decoder flags, e.g. CONCATENATED. */
    flags?: number;
    /** Decode on the calling thread instead of lzma-native's own (default false). */
    synchronous?: boolean;
  }

  /** Accept several concatenated .xz streams, as the xz tool does. */
  export const CONCATENATED: number;

  export function createStream(coder: 'streamDecoder' | 'autoDecoder', options?: StreamOptions): Transform;
}
