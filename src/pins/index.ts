export { PinsModule } from './pins.module';
export { PinsHttpModule } from './pins-http.module';
export { PinsService, type PinView, type PinProtection } from './pins.service';
export { referencedHashes, walkClosure, type Closure, type ClosureNode } from './closure';
export { parsePinTarget } from './pin-target';
export { parseTtl } from './pin-ttl';
