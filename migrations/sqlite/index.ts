import { InitialSchema1764000000000 } from './1764000000000-initial-schema';

/** SQLite migrations in the order they apply. */
export const SQLITE_MIGRATIONS = [InitialSchema1764000000000];
