import { Column, Entity, PrimaryColumn } from 'typeorm';

/** Cluster-wide settings shared through the database (the signing key, ...). */
@Entity({ name: 'config' })
export class ConfigEntryEntity {
  @PrimaryColumn({ type: 'varchar', length: 64 })
  key: string;

  @Column({ type: 'text' })
  value: string;
}
