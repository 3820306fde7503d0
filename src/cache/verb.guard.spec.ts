import { Controller, Delete, Get, Put } from '@nestjs/common';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host';
import { Test } from '@nestjs/testing';
import { MethodNotAllowedError } from 'src/common/errors';
import { NcpsConfig } from 'src/config/config';
import { NCPS_CONFIG } from 'src/config/config.module';
import { AllowVerb, VerbGuard } from './verb.guard';
import { testConfig } from 'test/support/config';

/** Handlers marked as the cache controller marks its own. */
@Controller()
class Routes {
  @Get('read')
  read(): void {}

  @Put('write')
  @AllowVerb('put')
  write(): void {}

  @Delete('erase')
  @AllowVerb('delete')
  erase(): void {}
}

/** The guard as Nest builds it, from a configuration built like the CLI builds it. */
async function guardFor(flags: Record<string, unknown>): Promise<VerbGuard> {
  const config: NcpsConfig = testConfig({ 'cache-put-token': 't', ...flags });
  const moduleRef = await Test.createTestingModule({ providers: [VerbGuard, { provide: NCPS_CONFIG, useValue: config }] }).compile();
  return moduleRef.get(VerbGuard);
}

/** 'pass', or the status and message the guard refused with. */
function decide(sut: VerbGuard, handler: 'read' | 'write' | 'erase'): string {
  const context = new ExecutionContextHost([{}, {}], Routes, Routes.prototype[handler]);
  try {
    return sut.canActivate(context) ? 'pass' : 'refused';
  } catch (e) {
    if (e instanceof MethodNotAllowedError) return `${e.status} ${e.message}`;
    throw e;
  }
}

describe('VerbGuard', () => {
  it('lets unmarked handlers through whatever the configuration', async () => {
    expect(decide(await guardFor({}), 'read')).toBe('pass');
    expect(decide(await guardFor({ 'cache-allow-put-verb': true, 'cache-allow-delete-verb': true }), 'read')).toBe('pass');
  });

  it('answers 405 for PUT and DELETE handlers while their verbs are disabled (the default)', async () => {
    const sut = await guardFor({});
    expect(decide(sut, 'write')).toBe('405 PUT is disabled on this cache');
    expect(decide(sut, 'erase')).toBe('405 DELETE is disabled on this cache');
  });

  it('allows each verb on its own flag only', async () => {
    const puts = await guardFor({ 'cache-allow-put-verb': true });
    expect(decide(puts, 'write')).toBe('pass');
    expect(decide(puts, 'erase')).toBe('405 DELETE is disabled on this cache');
    const deletes = await guardFor({ 'cache-allow-delete-verb': true });
    expect(decide(deletes, 'write')).toBe('405 PUT is disabled on this cache');
    expect(decide(deletes, 'erase')).toBe('pass');
  });
});
