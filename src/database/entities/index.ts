import { ConfigEntryEntity } from './config-entry.entity';
import { NarFileEntity } from './nar-file.entity';
import { NarInfoEntity } from './narinfo.entity';

export { ConfigEntryEntity, NarFileEntity, NarInfoEntity };
export const ENTITIES = [NarInfoEntity, NarFileEntity, ConfigEntryEntity];
