import { ConfigEntryEntity } from './config-entry.entity';
import { NarFileEntity } from './nar-file.entity';
import { NarInfoEntity } from './narinfo.entity';
import { NarDownloadEntity } from './nar-download.entity';

export { ConfigEntryEntity, NarDownloadEntity, NarFileEntity, NarInfoEntity };
export const ENTITIES = [NarInfoEntity, NarFileEntity, ConfigEntryEntity, NarDownloadEntity];
