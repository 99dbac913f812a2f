// Renders the configuration reference of docs/configuration.md from the config schema, or with
// --check fails when the file is stale. Only the part between the markers is generated.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { withGeneratedReference } from '../src/config-docs.js';
import { writeOrCheckGenerated } from './generated-file.js';

const file = join(import.meta.dirname, '..', 'docs', 'configuration.md');
writeOrCheckGenerated(file, withGeneratedReference(readFileSync(file, 'utf8')), 'npm run docs:config');
