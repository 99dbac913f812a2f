import { ConfigError, loadConfig } from './config.js';
import { configHelpText } from './config-docs.js';
import { StartupError } from './errors.js';
import { ensurePortFree } from './http/port.js';
import { createLogger, prettyDestination, stdoutDestination } from './logger.js';

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  process.stdout.write(configHelpText());
  process.exit(0);
}
// Loaded only once the server is to run: `--help` needs none of it.
const { buildApp } = await import('./app.js');

let config;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(error.message);
  process.exit(1);
}

const pretty = config.logFormat === 'pretty' ? prettyDestination() : undefined;
const logger = createLogger(config.logLevel, pretty ?? stdoutDestination());
if (config.logFormat === 'pretty' && !pretty) logger.warn('LOG_FORMAT=pretty needs pino-pretty, a dev dependency: logging JSON');
for (const warning of config.warnings) logger.warn(warning);

// A start-up refusal (port taken, Redis or database unreachable, data directory in use) says why
// and exits non-zero; only an unexpected failure comes with its stack.
const refuseStart = (error: unknown): never => {
  if (error instanceof StartupError) logger.fatal(error.message);
  else logger.fatal({ err: error }, error instanceof Error ? error.message : 'could not start');
  return process.exit(1);
};

// A taken port is refused before the database is opened: a new embedded one takes seconds and files.
await ensurePortFree(config.port, config.host).catch(refuseStart);
const app = await buildApp(config, { logger }).catch(refuseStart);
let stopping = false;
const shutdown = (signal: NodeJS.Signals) => {
  // Ctrl-C under `tsx watch` arrives twice (from the terminal, then relayed by tsx): a repeat must
  // not fall through to the default action, which would kill the process mid-stop.
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'shutting down');
  app.stop().then(
    () => {
      logger.info('stopped');
      process.exit(0);
    },
    (error) => {
      logger.error({ err: error }, 'shutdown failed');
      process.exit(1);
    },
  );
};
// Installed before the server announces itself: a SIGTERM that follows the announcement at once
// must reach this handler, not the default action that kills the process on the spot.
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

const url = await app.start().catch(async (error: unknown) => {
  await app.stop();
  return refuseStart(error);
});
logger.info(
  { url: url.toString(), database: app.db.kind, graphiql: config.http.graphiql },
  `Switchboard listening on ${url}`,
);
