import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, inject, it } from 'vitest';
import { TEST_JWT_SECRET } from './helpers/app.js';
import { dataDirFromTemplate, registerLeftover, tempDir } from './helpers/leftovers.js';
import { run, type RunResult } from './helpers/processes.js';
import { SERVER_PROCESS_TIMEOUT_MS, spawnServer } from './helpers/server-process.js';
import { skipping } from './helpers/skips.js';

const sharedDatabaseUrl = inject('databaseUrl');

// A server that cannot start says why in one line and exits 1, releasing its data directory.
async function startServer(env: Record<string, string>, dataDir = dataDirFromTemplate('sb-start', inject('pgliteDataDirTemplate'))): Promise<RunResult & { dataDir: string }> {
  const result = await run(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: { PATH: process.env.PATH, HOST: '127.0.0.1', PORT: '0', JWT_SECRET: TEST_JWT_SECRET, DATA_DIR: dataDir, ...env },
  });
  return { ...result, dataDir };
}

function fatalLines(stdout: string): string[] {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { level: number; msg: string })
    .filter((line) => line.level >= 60)
    .map((line) => line.msg);
}

function expectNoStackTrace(result: RunResult) {
  expect(result.stdout + result.stderr).not.toMatch(/\bat .+:\d+:\d+\)?$/m);
  expect(result.stdout).not.toContain('"frames"');
}

describe('start-up refusals', () => {
  it('names a port that is already taken and exits 1, before creating a database in a new DATA_DIR', { timeout: SERVER_PROCESS_TIMEOUT_MS }, async () => {
    const holder = createServer().listen(0, '127.0.0.1');
    await once(holder, 'listening');
    registerLeftover(() => new Promise((resolve) => holder.close(resolve)));
    const { port } = holder.address() as AddressInfo;

    const newDataDir = join(tempDir('sb-start'), 'data');
    const result = await startServer({ PORT: String(port) }, newDataDir);
    expect(result.status, result.stderr).toBe(1);
    expect(fatalLines(result.stdout)).toEqual([`Port ${port} is already in use (set PORT to another port)`]);
    expectNoStackTrace(result);
    expect(existsSync(newDataDir)).toBe(false);
  });

  it('names REDIS_URL and its address, never its password, when Redis is unreachable, before creating a database in a new DATA_DIR', { timeout: SERVER_PROCESS_TIMEOUT_MS }, async () => {
    const newDataDir = join(tempDir('sb-start'), 'data');
    const result = await startServer({ REDIS_URL: 'redis://:hunter2-secret@127.0.0.1:1' }, newDataDir);
    expect(result.status, result.stderr).toBe(1);
    const [line, ...others] = fatalLines(result.stdout);
    expect(others).toEqual([]);
    expect(line).toMatch(/^REDIS_URL: cannot connect to Redis at 127\.0\.0\.1:1 \(ECONNREFUSED\)$/);
    expect(result.stdout + result.stderr).not.toContain('hunter2');
    expectNoStackTrace(result);
    expect(existsSync(newDataDir)).toBe(false);
  });
});

describe('start-up refusals for DATABASE_URL', () => {
  it('names DATABASE_URL and the address, never the password, when the host is unknown', { timeout: SERVER_PROCESS_TIMEOUT_MS }, async () => {
    const result = await startServer({ DATABASE_URL: 'postgres://app:hunter2-secret@nope.invalid:5432/app' });
    expect(result.status, result.stderr).toBe(1);
    // EAI_AGAIN where no name server answers at all.
    expect(fatalLines(result.stdout)).toEqual([expect.stringMatching(/^DATABASE_URL: cannot connect to PostgreSQL at nope\.invalid:5432 \((ENOTFOUND|EAI_AGAIN)\)$/)]);
    expect(result.stdout + result.stderr).not.toContain('hunter2');
    expectNoStackTrace(result);
  });

  it('names DATABASE_URL and the address when nothing listens there', { timeout: SERVER_PROCESS_TIMEOUT_MS }, async () => {
    const result = await startServer({ DATABASE_URL: 'postgresql://app:hunter2-secret@127.0.0.1:1/app' });
    expect(result.status, result.stderr).toBe(1);
    expect(fatalLines(result.stdout)).toEqual(['DATABASE_URL: cannot connect to PostgreSQL at 127.0.0.1:1 (ECONNREFUSED)']);
    expect(result.stdout + result.stderr).not.toContain('hunter2');
    expectNoStackTrace(result);
  });

  it('says DATABASE_URL must be a PostgreSQL URL, in one line, through npm start', { timeout: SERVER_PROCESS_TIMEOUT_MS }, async () => {
    const result = await run('npm', ['start', '--silent'], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, JWT_SECRET: TEST_JWT_SECRET, DATABASE_URL: 'mysql://app@db.example/app' },
    });
    expect(result.status).toBe(1);
    // Nothing else either: no notice about a missing .env.
    expect(result.stderr).toBe('DATABASE_URL: must be a PostgreSQL URL (postgres://… or postgresql://…)\n');
    expect(result.stdout).toBe('');
  });

  describe.skipIf(skipping(!sharedDatabaseUrl, 'the DATABASE_URL refusals on a real PostgreSQL: needs DATABASE_URL (PostgreSQL)'))('on a real PostgreSQL', () => {
    it('names DATABASE_URL when the login is refused', { timeout: SERVER_PROCESS_TIMEOUT_MS }, async () => {
      const role = uniqueName('sb_no_such_role');
      const result = await startServer({ DATABASE_URL: withLogin(sharedDatabaseUrl!, role, 'test') });
      expect(result.status, result.stderr).toBe(1);
      const address = postgresAddress(sharedDatabaseUrl!);
      expect(fatalLines(result.stdout)).toEqual([
        `DATABASE_URL: PostgreSQL at ${address} refused the login (role "${role}" does not exist): check the user and password`,
      ]);
      expectNoStackTrace(result);
    });

    it('creates a database that does not exist yet, migrates it and serves', { timeout: SERVER_PROCESS_TIMEOUT_MS }, async () => {
      const name = uniqueName('sb_created');
      registerLeftover(() => dropDatabase(name));
      const url = new URL(sharedDatabaseUrl!);
      url.pathname = `/${name}`;
      const server = await spawnServer({ JWT_SECRET: TEST_JWT_SECRET, DATABASE_URL: url.href, DATA_DIR: tempDir('sb-start') });
      expect(server.output()).toContain(`created the database ${name} that DATABASE_URL names`);
      expect(await server.stop()).toBe(0);
      const db = new pg.Client({ connectionString: url.href });
      await db.connect();
      const { rows } = await db.query('SELECT count(*)::int AS applied FROM "_prisma_migrations"').finally(() => db.end());
      expect(rows[0].applied).toBeGreaterThan(0);
    });

    it('says how to create a database the role may not create', { timeout: SERVER_PROCESS_TIMEOUT_MS }, async () => {
      const role = uniqueName('sb_no_createdb');
      await onSharedDatabase((admin) => admin.query(`CREATE ROLE ${role} LOGIN NOCREATEDB`));
      registerLeftover(() => onSharedDatabase((admin) => admin.query(`DROP ROLE IF EXISTS ${role}`)));
      const name = uniqueName('sb_not_created');
      registerLeftover(() => dropDatabase(name));
      const result = await startServer({ DATABASE_URL: withLogin(sharedDatabaseUrl!, role, name) });
      expect(result.status, result.stderr).toBe(1);
      const address = postgresAddress(sharedDatabaseUrl!);
      expect(fatalLines(result.stdout)).toEqual([
        `DATABASE_URL: database "${name}" does not exist on PostgreSQL at ${address} and could not be created ` +
          `(permission denied to create database): create it (createdb ${name}, or CREATE DATABASE ${name}) or name another database`,
      ]);
      expectNoStackTrace(result);
    });
  });
});

const uniqueName = (prefix: string) => `${prefix}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;

function withLogin(sharedUrl: string, user: string, database: string): string {
  const url = new URL(sharedUrl);
  url.username = user;
  url.password = '';
  url.pathname = `/${database}`;
  return url.href;
}

function postgresAddress(url: string): string {
  const { hostname, port } = new URL(url);
  return `${hostname}:${port || 5432}`;
}

async function onSharedDatabase<T>(work: (admin: pg.Client) => Promise<T>): Promise<T> {
  const admin = new pg.Client({ connectionString: sharedDatabaseUrl! });
  await admin.connect();
  try {
    return await work(admin);
  } finally {
    await admin.end();
  }
}

const dropDatabase = (name: string) => onSharedDatabase((admin) => admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
