import { ValueTransformer } from 'typeorm';

/**
 * Sizes and times are stored as BIGINT (times as epoch milliseconds) so one logical schema maps to
 * SQLite, PostgreSQL and MySQL alike. pg and mysql2 return BIGINT as strings; this turns them back.
 */
export const bigintNumber: ValueTransformer = {
  to: (value: number | null | undefined) => value,
  from: (value: string | number | null) => (value === null || value === undefined ? value : Number(value)),
};
