import type { CodegenConfig } from '@graphql-codegen/cli';

// Run from the repository's root: npx graphql-codegen --config examples/typed-client/codegen.ts
// (`npm run generate` does it too). Types come from the committed schema.graphql.
const config: CodegenConfig = {
  schema: 'schema.graphql',
  documents: ['examples/typed-client/*.ts', '!examples/typed-client/codegen.ts'],
  generates: {
    'examples/typed-client/generated/': {
      preset: 'client',
      presetConfig: { fragmentMasking: false },
      config: {
        // NodeNext ESM needs extensions on relative imports.
        importExtension: '.js',
        useTypeImports: true,
        enumsAsTypes: true,
        scalars: { DateTime: 'string', Date: 'string', ID: 'string', SafeInt: 'number', JSON: 'unknown' },
      },
    },
  },
};

export default config;
