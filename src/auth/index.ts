// Who may read and who may write: the token check shared by every domain that serves routes.
export { AccessTokens, matchesOneOf, presentedToken, TokenGuard } from './token.guard';
