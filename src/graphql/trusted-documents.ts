import { readFileSync } from 'node:fs';
import { usePersistedOperations } from '@graphql-yoga/plugin-persisted-operations';
import { createGraphQLError, type GraphQLParams, type Plugin } from 'graphql-yoga';
import type { GraphQLError } from 'graphql';

/** Documents by id (`sha256:<hex>`), as graphql-codegen's client preset writes persisted-documents.json. */
export type TrustedDocuments = ReadonlyMap<string, string>;

export function loadTrustedDocuments(file: string): TrustedDocuments {
  const manifest: unknown = JSON.parse(readFileSync(file, 'utf8'));
  if (typeof manifest !== 'object' || manifest === null || Object.values(manifest).some((d) => typeof d !== 'string')) {
    throw new Error(`${file} must be a JSON object of document id to document text`);
  }
  return new Map(Object.entries(manifest as Record<string, string>));
}

/**
 * The id a client sent: `documentId` (the GraphQL over HTTP trusted documents proposal) or
 * Apollo's `extensions.persistedQuery.sha256Hash` (Apollo Client, urql). Bare hashes match
 * `sha256:`-prefixed ids.
 */
function documentIdOf(params: Pick<GraphQLParams, 'extensions'> & { documentId?: unknown }): string | null {
  if (typeof params.documentId === 'string') return params.documentId;
  const hash = (params.extensions?.persistedQuery as { sha256Hash?: unknown } | undefined)?.sha256Hash;
  return typeof hash === 'string' ? hash : null;
}

const find = (documents: TrustedDocuments, id: string) => documents.get(id) ?? documents.get(`sha256:${id}`) ?? null;

const refusal = (message: string) => createGraphQLError(message, { extensions: { code: 'PERSISTED_QUERY_NOT_FOUND', http: { status: 400 } } });

/** Over HTTP and SSE: only the listed documents run; a query text is refused. */
export function useTrustedDocuments(documents: TrustedDocuments): Plugin {
  return usePersistedOperations({
    allowArbitraryOperations: false,
    extractPersistedOperationId: (params) => documentIdOf(params as GraphQLParams & { documentId?: unknown }),
    getPersistedOperation: (id) => find(documents, id),
    customErrors: {
      persistedQueryOnly: { message: 'Only trusted documents run here: send documentId instead of query', extensions: { code: 'PERSISTED_QUERY_ONLY', http: { status: 400 } } },
      keyNotFound: { message: 'Send documentId (or extensions.persistedQuery.sha256Hash)', extensions: { code: 'PERSISTED_QUERY_ONLY', http: { status: 400 } } },
      notFound: { message: 'Unknown document id', extensions: { code: 'PERSISTED_QUERY_NOT_FOUND', http: { status: 400 } } },
    },
  });
}

/** The same rule for a graphql-ws subscribe payload: the document text to run, or why not. */
export function trustedQueryOf(
  documents: TrustedDocuments,
  payload: { query?: unknown; extensions?: Record<string, unknown> | null; documentId?: unknown },
): string | GraphQLError {
  if (payload.query) return refusal('Only trusted documents run here: send documentId instead of query');
  const id = documentIdOf({ extensions: payload.extensions ?? undefined, documentId: payload.documentId });
  return (id && find(documents, id)) ?? refusal('Unknown document id');
}
