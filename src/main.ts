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

const app = await buildApp(config, { logger });
const url = await app.start();
logger.info(
  { url: url.toString(), database: app.db.kind, graphiql: config.http.graphiql },
  `Switchboard listening on ${url}`,
);

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
process.once('SIGTERM', () => shutdown('SIGTERM'));
process.once('SIGINT', () => shutdown('SIGINT'));
