// Prints the Pothos schema (sorted) to schema.graphql, or with --check fails when the file is stale.
import { join } from 'node:path';
import { lexicographicSortSchema, printSchema } from 'graphql';
import { schema } from '../src/graphql/schema.js';
import { writeOrCheckGenerated } from './generated-file.js';

writeOrCheckGenerated(join(import.meta.dirname, '..', 'schema.graphql'), `${printSchema(lexicographicSortSchema(schema))}\n`, 'npm run schema:print');
