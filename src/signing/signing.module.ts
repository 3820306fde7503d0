import { Module } from '@nestjs/common';
import { DatabaseModule } from 'src/database';
import { SigningKeyService } from './signing-key.service';

@Module({
  imports: [DatabaseModule],
  providers: [SigningKeyService],
  exports: [SigningKeyService],
})
export class SigningModule {}
