import { CanActivate, ExecutionContext, Inject, Injectable, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { NCPS_CONFIG } from 'src/config/config.module';
import { NcpsConfig } from 'src/config/config';
import { MethodNotAllowedError } from 'src/common/errors';

const VERB_KEY = 'ncps:verb';
type Verb = 'put' | 'delete';

/** Marks a handler as needing --cache-allow-put-verb or --cache-allow-delete-verb. */
export const AllowVerb = (verb: Verb) => SetMetadata(VERB_KEY, verb);

/**
 * 405 for PUT/DELETE unless configuration allows them — checked before any body is read, and after
 * TokenGuard (listed first), so only a client holding the put token learns that a verb is disabled.
 */
@Injectable()
export class VerbGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    @Inject(NCPS_CONFIG) private readonly config: NcpsConfig,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    const verb = this.reflector.get<Verb | undefined>(VERB_KEY, context.getHandler());
    if (verb === 'put' && !this.config.cache.allowPut) throw new MethodNotAllowedError('PUT is disabled on this cache');
    if (verb === 'delete' && !this.config.cache.allowDelete) {
      throw new MethodNotAllowedError('DELETE is disabled on this cache');
    }
    return true;
  }
}
