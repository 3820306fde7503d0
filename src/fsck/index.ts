export { FsckModule } from './fsck.module';
export { FsckService } from './fsck.service';
export { FsckReporter } from './fsck.reporter';
export { FINDING_KINDS, type Finding, type FindingKind, type FsckOptions, type FsckSummary } from './fsck.findings';
