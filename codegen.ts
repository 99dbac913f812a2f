import type { CodegenConfig } from '@graphql-codegen/cli';

// Typed documents for the tests, generated from the committed schema.graphql.
const config: CodegenConfig = {
  schema: 'schema.graphql',
  documents: ['test/**/*.ts', '!test/generated/**'],
  ignoreNoDocuments: true,
  generates: {
    'test/generated/': {
      preset: 'client',
      // persisted-documents.json: the trusted documents a server can be limited to
      // (PERSISTED_OPERATIONS_FILE); each document carries its sha256 hash.
      presetConfig: { fragmentMasking: false, persistedDocuments: { hashAlgorithm: 'sha256' } },
      config: {
        importExtension: '.js',
        useTypeImports: true,
        enumsAsTypes: true,
        scalars: { DateTime: 'string', Date: 'string', ID: 'string', SafeInt: 'number', JSON: 'unknown', File: 'unknown' },
      },
    },
  },
};

export default config;
