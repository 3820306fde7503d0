export { WarmModule } from './warm.module';
export { WarmHttpModule } from './warm-http.module';
export { WarmService, DEFAULT_WARM_CONCURRENCY, MAX_WARM_CONCURRENCY, type WarmRun } from './warm.service';
export { parseWarmTarget, parseWarmTargets, warmLines, type WarmTargets, type InvalidEntry } from './warm-input';
export { WarmProgress } from './warm.progress';
export type { WarmSummary, PathOutcome } from './closure-walk';
