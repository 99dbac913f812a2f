// Renders the configuration reference of docs/configuration.md from the config schema, or with
// --check fails when the file is stale. Only the part between the markers is generated.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { withGeneratedReference } from '../src/config-docs.js';

const file = join(import.meta.dirname, '..', 'docs', 'configuration.md');
const committed = readFileSync(file, 'utf8');
const rendered = withGeneratedReference(committed);

if (process.argv.includes('--check')) {
  if (committed !== rendered) {
    console.error('docs/configuration.md is stale: run `npm run docs:config` and commit the result.');
    process.exit(1);
  }
  console.log('docs/configuration.md is up to date.');
} else {
  writeFileSync(file, rendered);
  console.log(`Wrote ${file}`);
}
