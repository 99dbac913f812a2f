import { AuthScopeFailureType, type AuthFailure } from '@pothos/plugin-scope-auth';
import type { ApiKeyScope } from '../generated/prisma/client.js';

/**
 * What reading user data needs, wherever the data appears: at a query's root, inside another
 * object, or in what a mutation or a subscription returns. Sessions (access tokens, OIDC) read
 * everything of their own; an API key reads only what its scopes allow.
 *
 * Each guarded type checks once per object (`runScopesOnType`: in graphql-js' isTypeOf, with the
 * viewer's scopes from the context, no database work), so a refusal nulls the field that returns
 * the object, with one FORBIDDEN error at its path.
 */

/** Granted by every mutation to the object it returns itself (and to a payload's objects). */
export const MUTATION_RESULT = 'mutationResult';

/**
 * Conversations, messages, usage, quota, credit balances: a session, a key with READ, or the
 * object the mutation just made or changed (a CHAT key sees the conversation it renamed and the
 * messages it sent, not the rest of the conversation).
 */
export const READ = { read: true, $granted: MUTATION_RESULT } as const;

/** API keys and the credit ledger are account records: a key needs READ and ACCOUNT. */
export const READ_ACCOUNT = { readAccount: true, $granted: MUTATION_RESULT } as const;

/** Type options for a type that holds user data and is read with READ. */
export const readGuarded = { runScopesOnType: true, authScopes: READ } as const;

/** The same for account records. */
export const readAccountGuarded = { runScopesOnType: true, authScopes: READ_ACCOUNT } as const;

/** The API key scopes that a refusal was missing, when it was refused for a read scope. */
export function missingKeyScopes(failure: AuthFailure): ApiKeyScope[] | undefined {
  if ('failures' in failure) {
    for (const inner of failure.failures) {
      const missing = missingKeyScopes(inner);
      if (missing) return missing;
    }
    return undefined;
  }
  if (failure.kind !== AuthScopeFailureType.AuthScope) return undefined;
  if (failure.scope === 'read') return ['READ'];
  if (failure.scope === 'readAccount') return ['READ', 'ACCOUNT'];
  return undefined;
}
