import { Module } from '@nestjs/common';
import { DatabaseModule } from 'src/database';
import { SecretKeyFile } from './secret-key.file';
import { SigningKeyService } from './signing-key.service';

@Module({
  imports: [DatabaseModule],
  providers: [SecretKeyFile, SigningKeyService],
  exports: [SigningKeyService],
})
export class SigningModule {}
