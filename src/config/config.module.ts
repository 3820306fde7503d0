import { DynamicModule, Global, Module } from '@nestjs/common';
import { NcpsConfig } from './config';

/** DI token of the validated NcpsConfig: `@Inject(NCPS_CONFIG) private readonly config: NcpsConfig`. */
export const NCPS_CONFIG = Symbol('NCPS_CONFIG');

@Global()
@Module({})
export class ConfigModule {
  static forRoot(config: NcpsConfig): DynamicModule {
    return {
      module: ConfigModule,
      providers: [{ provide: NCPS_CONFIG, useValue: config }],
      exports: [NCPS_CONFIG],
    };
  }
}
