import { InitialSchema1764000000000 } from './1764000000000-initial-schema';
import { NarDownloads1764100000000 } from './1764100000000-nar-downloads';
import { NarInfoVerified1764200000000 } from './1764200000000-narinfo-verified';
import { Artifacts1764300000000 } from './1764300000000-artifacts';
import { NegativeNarInfos1764400000000 } from './1764400000000-negative-narinfos';
import { Pins1764500000000 } from './1764500000000-pins';

/** PostgreSQL migrations in the order they apply. */
export const POSTGRES_MIGRATIONS = [
  InitialSchema1764000000000,
  NarDownloads1764100000000,
  NarInfoVerified1764200000000,
  Artifacts1764300000000,
  NegativeNarInfos1764400000000,
  Pins1764500000000,
];
