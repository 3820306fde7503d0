export { SigningModule } from './signing.module';
export { SigningKeyService } from './signing-key.service';
