import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The two operations the migrator needs from one database session. */
export interface SqlConnection {
  query<Row = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<Row[]>;
  exec(sql: string): Promise<void>;
}

export interface Migration {
  name: string;
  sql: string;
  checksum: string;
}

// src/db/ under tsx, dist/src/db/ when compiled: look upwards for the repository's prisma folder.
const prismaDir =
  [2, 3].map((up) => join(import.meta.dirname, ...Array<string>(up).fill('..'), 'prisma')).find((dir) => existsSync(join(dir, 'migrations'))) ??
  join(process.cwd(), 'prisma');
export const defaultMigrationsDir = join(prismaDir, 'migrations');
/** The database functions, one per file, each a CREATE OR REPLACE: their one source. */
export const defaultFunctionsDir = join(prismaDir, 'sql');

// Same table as `prisma migrate deploy`, so the Prisma CLI keeps working wherever its engine exists.
const createMigrationsTable = `
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
  "id"                  VARCHAR(36) PRIMARY KEY NOT NULL,
  "checksum"            VARCHAR(64) NOT NULL,
  "finished_at"         TIMESTAMPTZ,
  "migration_name"      VARCHAR(255) NOT NULL,
  "logs"                TEXT,
  "rolled_back_at"      TIMESTAMPTZ,
  "started_at"          TIMESTAMPTZ NOT NULL DEFAULT now(),
  "applied_steps_count" INTEGER NOT NULL DEFAULT 0
)`;

// Any fixed 64-bit number; serialises migrators of several instances starting together.
const MIGRATION_LOCK_KEY = 72707369;

export function readMigrations(dir = defaultMigrationsDir): Migration[] {
  return readdirSync(dir)
    .filter((name) => statSync(join(dir, name)).isDirectory())
    .sort()
    .map((name) => {
      const sql = readFileSync(join(dir, name, 'migration.sql'), 'utf8');
      return { name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    });
}

/** A database function's source file: its name (the file's) and its CREATE OR REPLACE statement. */
export interface DatabaseFunction {
  name: string;
  sql: string;
}

export function readDatabaseFunctions(dir = defaultFunctionsDir): DatabaseFunction[] {
  return readdirSync(dir)
    .filter((file) => file.endsWith('.sql'))
    .sort()
    .map((file) => ({ name: file.slice(0, -'.sql'.length), sql: readFileSync(join(dir, file), 'utf8') }));
}

export class MigrationError extends Error {
  override name = 'MigrationError';
}

/**
 * Applies pending migrations, each in its own transaction, recording them the way Prisma does,
 * then (re)creates every database function from its source file, all in one transaction: the
 * functions then say what prisma/sql says, whichever migration created them first. Refuses to
 * start when an applied migration was edited or an earlier one failed half-way. Returns the names
 * of the migrations it applied.
 */
export async function migrate(conn: SqlConnection, migrations = readMigrations(), functions = readDatabaseFunctions()): Promise<string[]> {
  await conn.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
  try {
    await conn.exec(createMigrationsTable);
    const rows = await conn.query<{ migration_name: string; checksum: string; finished_at: Date | null }>(
      'SELECT migration_name, checksum, finished_at FROM "_prisma_migrations" WHERE rolled_back_at IS NULL',
    );
    const applied = new Map(rows.map((r) => [r.migration_name, r]));
    const done: string[] = [];
    for (const migration of migrations) {
      const row = applied.get(migration.name);
      if (row && !row.finished_at) {
        throw new MigrationError(`Migration ${migration.name} failed earlier; resolve it before starting again`);
      }
      if (row && row.checksum !== migration.checksum) {
        throw new MigrationError(`Migration ${migration.name} was modified after it was applied`);
      }
      if (row) continue;
      await applyMigration(conn, migration);
      done.push(migration.name);
    }
    await applyFunctions(conn, functions);
    return done;
  } finally {
    await conn.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
  }
}

async function applyMigration(conn: SqlConnection, migration: Migration): Promise<void> {
  await conn.exec('BEGIN');
  try {
    await conn.exec(migration.sql);
    await conn.query(
      `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, finished_at, applied_steps_count)
       VALUES ($1, $2, $3, now(), 1)`,
      [randomUUID(), migration.checksum, migration.name],
    );
    await conn.exec('COMMIT');
  } catch (error) {
    await conn.exec('ROLLBACK');
    throw new MigrationError(`Migration ${migration.name} failed: ${(error as Error).message}`);
  }
}

async function applyFunctions(conn: SqlConnection, functions: DatabaseFunction[]): Promise<void> {
  await conn.exec('BEGIN');
  let current = '';
  try {
    for (const fn of functions) {
      current = fn.name;
      await conn.exec(fn.sql);
    }
    await conn.exec('COMMIT');
  } catch (error) {
    await conn.exec('ROLLBACK');
    throw new MigrationError(`Database function ${current} could not be created: ${(error as Error).message}`);
  }
}
