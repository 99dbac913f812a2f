import { forbidden } from '../errors.js';
import type { ApiKeyScope } from '../generated/prisma/client.js';
import type { Viewer } from './viewer.js';

type RootKind = 'Query' | 'Mutation' | 'Subscription';

// Mutations that send, stop or change chats; the others change the account.
const CHAT_MUTATIONS = new Set([
  'sendMessage',
  'regenerateMessage',
  'editMessage',
  'submitToolResults',
  'selectBranch',
  'stopGeneration',
  'createConversation',
  'updateConversation',
  'deleteConversation',
  'archiveConversation',
  'createRealtimeSession',
]);
// Signing in and out needs no key at all.
const SESSION_MUTATIONS = new Set(['register', 'login', 'refreshToken', 'logout']);

/** The scope a key needs for a root field: READ to read and follow, CHAT to chat, ACCOUNT for the rest. */
export function requiredScope(rootType: RootKind, field: string): ApiKeyScope | null {
  if (rootType !== 'Mutation') return 'READ';
  if (SESSION_MUTATIONS.has(field)) return null;
  return CHAT_MUTATIONS.has(field) ? 'CHAT' : 'ACCOUNT';
}

/** A request made with an API key may use only the root fields its scopes allow. */
export function assertApiKeyScope(viewer: Viewer | null, rootType: RootKind, field: string): void {
  if (viewer?.via !== 'api_key') return;
  const scope = requiredScope(rootType, field);
  if (scope && !viewer.apiKeyScopes?.includes(scope)) {
    throw forbidden(`This API key lacks the ${scope} scope that ${field} needs`);
  }
}

/** Whether the viewer may read data that needs these scopes: a session always, an API key with every one of them. */
export function keyAllows(viewer: Viewer | null, scopes: readonly ApiKeyScope[]): boolean {
  return viewer?.via !== 'api_key' || scopes.every((scope) => viewer.apiKeyScopes?.includes(scope));
}
