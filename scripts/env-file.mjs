// Preloaded by `npm start` and `npm run dev`: reads ./.env when there is one, variables set in the
// shell winning. Node's --env-file-if-exists does the same, but Node 20 prints a notice for a
// missing file from every process whose arguments carry the flag (tsx's and the server's).
// Plain JavaScript: worker threads (pino-pretty's) inherit this preload without tsx's loader.
import { existsSync } from 'node:fs';

if (existsSync('.env')) process.loadEnvFile('.env');
