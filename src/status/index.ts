export { StatusModule } from './status.module';
export { renderStatusPage, type StatusView } from './status.render';
