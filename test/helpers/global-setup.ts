import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLITE_EXTENSIONS } from '../../src/db/client.js';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { migrate } from '../../src/db/migrate.js';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string | null;
    /** A dump of a migrated, empty PGlite database that in-memory test databases start from. */
    pgliteTemplate: string | null;
    /** The same as a data directory, for servers run as processes (see dataDirFromTemplate). */
    pgliteDataDirTemplate: string;
  }
}

/**
 * With DATABASE_URL set, the suite runs on a fresh PostgreSQL database created for this run
 * (so migrations are applied from scratch every time) and dropped afterwards.
 * Without it, every test server uses its own in-memory PGlite, loaded from a migrated template:
 * creating an empty PGlite cluster takes seconds, loading a dump a fraction of that.
 */
export default async function setup(project: TestProject) {
  const baseUrl = process.env.DATABASE_URL;
  const dir = mkdtempSync(join(tmpdir(), 'sb-pglite-template-'));
  const removeTemplates = () => rmSync(dir, { recursive: true, force: true });
  project.provide('pgliteDataDirTemplate', await migratedPgliteDataDir(join(dir, 'pglite')));
  if (!baseUrl) {
    project.provide('databaseUrl', null);
    const file = join(dir, 'template.tar');
    writeFileSync(file, Buffer.from(await (await migratedPgliteDump()).arrayBuffer()));
    project.provide('pgliteTemplate', file);
    return removeTemplates;
  }
  project.provide('pgliteTemplate', null);
  const name = `switchboard_test_${Date.now()}_${process.pid}`;
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  project.provide('databaseUrl', url.toString());

  return async () => {
    removeTemplates();
    const client = new pg.Client({ connectionString: baseUrl });
    await client.connect();
    await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await client.end();
  };
}

async function migratedPglite(dataDir: string): Promise<PGlite> {
  const pglite = await PGlite.create(dataDir, { extensions: PGLITE_EXTENSIONS });
  await migrate({
    query: async (sql, params) => (await pglite.query(sql, params as unknown[])).rows as never,
    exec: async (sql) => void (await pglite.exec(sql)),
  });
  return pglite;
}

async function migratedPgliteDump(): Promise<Blob> {
  const pglite = await migratedPglite('memory://');
  try {
    return await pglite.dumpDataDir('none');
  } finally {
    await pglite.close();
  }
}

async function migratedPgliteDataDir(dataDir: string): Promise<string> {
  await (await migratedPglite(dataDir)).close();
  return dataDir;
}
