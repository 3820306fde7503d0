import { ArtifactEntity } from './artifact.entity';
import { ConfigEntryEntity } from './config-entry.entity';
import { NarFileEntity } from './nar-file.entity';
import { NarInfoEntity } from './narinfo.entity';
import { NarDownloadEntity } from './nar-download.entity';
import { NegativeNarInfoEntity } from './negative-narinfo.entity';
import { PinEntity } from './pin.entity';

export { ArtifactEntity, ConfigEntryEntity, NarDownloadEntity, NarFileEntity, NarInfoEntity, NegativeNarInfoEntity, PinEntity };
export const ENTITIES = [
  NarInfoEntity,
  NarFileEntity,
  ConfigEntryEntity,
  NarDownloadEntity,
  PinEntity,
  NegativeNarInfoEntity,
  ArtifactEntity,
];
