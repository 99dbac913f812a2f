import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { PrismaClient, type Prisma } from '../generated/prisma/client.js';
import { lockDataDir } from './data-dir-lock.js';
import type { SqlConnection } from './migrate.js';

export type { PrismaClient };
/** The client inside an interactive transaction, or the client itself: code that can run in either. */
export type PrismaTx = Prisma.TransactionClient;

export type DatabaseTarget =
  | { kind: 'postgres'; url: string }
  /** `template`: a PGlite dump (dumpDataDir) to start from instead of an empty cluster, which takes seconds to create. */
  | { kind: 'pglite'; dataDir: string; template?: Blob };

/** The PostgreSQL extensions the migrations use, loaded into every embedded database (conversation search). */
export const PGLITE_EXTENSIONS = { pg_trgm };

/** Where the configuration says the data lives: PostgreSQL with DATABASE_URL, else embedded PGlite under DATA_DIR. */
export function databaseTargetOf(config: { databaseUrl?: string; dataDir: string }): DatabaseTarget {
  return config.databaseUrl ? { kind: 'postgres', url: config.databaseUrl } : { kind: 'pglite', dataDir: `${config.dataDir}/pglite` };
}

export interface Database {
  kind: DatabaseTarget['kind'];
  prisma: PrismaClient;
  /** Runs `work` on one dedicated connection (the migrator needs a session for its lock). */
  withConnection<T>(work: (conn: SqlConnection) => Promise<T>): Promise<T>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** Called with every SQL statement Prisma sends and its parameters (tests count and measure them). */
  onQuery?: (sql: string, params: string) => void;
}

/** Opens the embedded PGlite database or a PostgreSQL pool, with a Prisma client on top. */
export async function openDatabase(target: DatabaseTarget, options: DatabaseOptions = {}): Promise<Database> {
  return target.kind === 'postgres' ? openPostgres(target.url, options) : openPglite(target.dataDir, options, target.template);
}

// Prisma's defaults (2 s to get a connection, 5 s to finish) turn a burst of requests queueing for
// the pool into errors; short transactions that wait a little longer are the better trade.
const TRANSACTION_OPTIONS = { maxWait: 10_000, timeout: 15_000 };

function createPrisma(adapter: PrismaPg | PrismaPGlite, options: DatabaseOptions): PrismaClient {
  if (!options.onQuery) return new PrismaClient({ adapter, transactionOptions: TRANSACTION_OPTIONS });
  const prisma = new PrismaClient({ adapter, transactionOptions: TRANSACTION_OPTIONS, log: [{ emit: 'event', level: 'query' }] });
  const onQuery = options.onQuery;
  prisma.$on('query', (event) => onQuery(event.query, event.params));
  return prisma as unknown as PrismaClient;
}

function openPostgres(url: string, options: DatabaseOptions): Database {
  const pool = new pg.Pool({ connectionString: url, max: 10, idleTimeoutMillis: 30_000 });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', () => {});
  const prisma = createPrisma(new PrismaPg(pool), options);
  return {
    kind: 'postgres',
    prisma,
    async withConnection(work) {
      const client = await pool.connect();
      try {
        return await work({
          query: async (sql, params) => (await client.query(sql, params as unknown[])).rows,
          exec: async (sql) => void (await client.query(sql)),
        });
      } finally {
        client.release();
      }
    },
    async ping() {
      await pool.query('SELECT 1');
    },
    async close() {
      await prisma.$disconnect();
      await pool.end();
    },
  };
}

async function openPglite(dataDir: string, options: DatabaseOptions, template?: Blob): Promise<Database> {
  let unlock = () => {};
  if (!dataDir.includes('://')) {
    mkdirSync(dataDir, { recursive: true });
    unlock = lockDataDir(dataDir);
  }
  let pglite: PGlite;
  try {
    pglite = await PGlite.create(dataDir, { extensions: PGLITE_EXTENSIONS, ...(template ? { loadDataDir: template } : {}) });
  } catch (error) {
    unlock();
    throw error;
  }
  const prisma = createPrisma(new PrismaPGlite(pglite), options);
  return {
    kind: 'pglite',
    prisma,
    withConnection: (work) =>
      work({
        query: async (sql, params) => (await pglite.query(sql, params as unknown[])).rows as never,
        exec: async (sql) => void (await pglite.exec(sql)),
      }),
    async ping() {
      await pglite.query('SELECT 1');
    },
    async close() {
      await prisma.$disconnect();
      await pglite.close();
      unlock();
    },
  };
}
