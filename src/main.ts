import { buildApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './logger.js';

let config;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(error.message);
  process.exit(1);
}

const logger = createLogger(config.logLevel);
for (const warning of config.warnings) logger.warn(warning);

const app = await buildApp(config, { logger }).catch((error: unknown) => {
  // A start-up refusal (data directory in use, database unreachable) says why and exits non-zero.
  logger.fatal({ err: error }, error instanceof Error ? error.message : 'could not start');
  return process.exit(1);
});
const shutdown = (signal: string) => {
  logger.info({ signal }, 'shutting down');
  app.stop().then(
    () => process.exit(0),
    (error) => {
      logger.error({ err: error }, 'shutdown failed');
      process.exit(1);
    },
  );
};
// Installed before the server announces itself: a SIGTERM that follows the announcement at once
// must reach this handler, not the default action that kills the process on the spot.
process.once('SIGTERM', () => shutdown('SIGTERM'));
process.once('SIGINT', () => shutdown('SIGINT'));

const url = await app.start();
logger.info(
  { url: url.toString(), database: app.db.kind, graphiql: config.http.graphiql },
  `Switchboard listening on ${url}`,
);
