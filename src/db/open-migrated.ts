import type { Logger } from '../logger.js';
import { openDatabase, type Database, type DatabaseOptions, type DatabaseTarget } from './client.js';
import { migrate } from './migrate.js';
import { ensurePostgresDatabase } from './postgres-database.js';

/**
 * The database the server (or the admin command) works on, migrated: a PostgreSQL URL is checked
 * first (a wrong one is refused in one line; a database not created yet is, when the role may).
 */
export async function openMigratedDatabase(target: DatabaseTarget, logger: Logger, options: DatabaseOptions = {}): Promise<Database> {
  if (target.kind === 'postgres') await ensurePostgresDatabase(target.url, logger);
  const db = await openDatabase(target, options);
  const applied = await db.withConnection((conn) => migrate(conn));
  if (applied.length) logger.info({ migrations: applied }, 'applied database migrations');
  return db;
}
