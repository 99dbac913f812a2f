import pg from 'pg';
import { connectionFailureReason, StartupError } from '../errors.js';
import type { Logger } from '../logger.js';

// PostgreSQL's error codes (SQLSTATE) that start-up answers differently.
const DATABASE_DOES_NOT_EXIST = '3D000';
const DATABASE_ALREADY_EXISTS = '42P04';
const LOGIN_REFUSED_CLASS = '28';

// An address that drops packets would otherwise hold start-up for the system's TCP timeout.
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * Connects once before the pool is used, so that a wrong DATABASE_URL is refused in one line naming
 * it and the address (pg's errors name neither). A database that does not exist yet is created when
 * the role may (a fresh install), else the line says how to create it.
 */
export async function ensurePostgresDatabase(url: string, logger: Logger): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  const address = `${client.host}:${client.port}`;
  try {
    await client.connect();
  } catch (error) {
    if (codeOf(error) !== DATABASE_DOES_NOT_EXIST) throw cannotConnect(address, error);
    await createDatabase(url, client.database ?? '', address);
    logger.info({ database: client.database }, `created the database ${client.database} that DATABASE_URL names`);
    return;
  }
  await client.end();
}

/** CREATE DATABASE through the server's `postgres` database, as `createdb` does. */
async function createDatabase(url: string, name: string, address: string): Promise<void> {
  const maintenanceUrl = new URL(url);
  maintenanceUrl.pathname = '/postgres';
  const client = new pg.Client({ connectionString: maintenanceUrl.href, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  try {
    await client.connect();
  } catch (error) {
    throw cannotCreate(name, address, error);
  }
  try {
    await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
  } catch (error) {
    // Another instance starting at the same time created it first.
    if (codeOf(error) !== DATABASE_ALREADY_EXISTS) throw cannotCreate(name, address, error);
  } finally {
    await client.end();
  }
}

function cannotConnect(address: string, error: unknown): StartupError {
  if (codeOf(error)?.startsWith(LOGIN_REFUSED_CLASS)) {
    return new StartupError(`DATABASE_URL: PostgreSQL at ${address} refused the login (${connectionFailureReason(error)}): check the user and password`);
  }
  return new StartupError(`DATABASE_URL: cannot connect to PostgreSQL at ${address} (${connectionFailureReason(error)})`);
}

function cannotCreate(name: string, address: string, error: unknown): StartupError {
  return new StartupError(
    `DATABASE_URL: database "${name}" does not exist on PostgreSQL at ${address} and could not be created (${connectionFailureReason(error)}): ` +
      `create it (createdb ${name}, or CREATE DATABASE ${name}) or name another database`,
  );
}

const codeOf = (error: unknown) => (error as { code?: string }).code;

