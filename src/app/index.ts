// The Nest application: its root module, and how it is created and listens.
export { createApp, listen } from './bootstrap';
