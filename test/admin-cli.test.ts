import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import type { DatabaseTarget } from '../src/db/client.js';
import { signUp } from './helpers/admin.js';
import { startTestApp, TEST_JWT_SECRET, uniqueEmail } from './helpers/app.js';
import { dataDirFromTemplate } from './helpers/leftovers.js';
import { run } from './helpers/processes.js';
import { SERVER_PROCESS_TIMEOUT_MS } from './helpers/server-process.js';

describe('npm run admin -- promote', () => {
  it('makes an account ADMIN with an audit entry, prints one line, and exits 1 for an unknown e-mail', { timeout: SERVER_PROCESS_TIMEOUT_MS }, async () => {
    const databaseUrl = inject('databaseUrl');
    const dataDir = dataDirFromTemplate('sb-admin-cli', inject('pgliteDataDirTemplate'));
    // The embedded database of that data dir, or the suite's PostgreSQL database.
    const database: DatabaseTarget = databaseUrl ? { kind: 'postgres', url: databaseUrl } : { kind: 'pglite', dataDir: join(dataDir, 'pglite') };
    const env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NODE_ENV: 'test',
      DATA_DIR: dataDir,
      JWT_SECRET: TEST_JWT_SECRET,
      ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
    };
    const admin = (...args: string[]) => run('npm', ['run', '--silent', 'admin', '--', ...args], { env });

    // An account to promote; the embedded database is released before the command opens it.
    const before = await startTestApp({}, { database });
    const user = await signUp(before);
    await before.stop();

    const promoted = await admin('promote', user.email.toUpperCase());
    expect(promoted.stdout.trim().split('\n')).toEqual([`${user.email.toUpperCase()} is now an ADMIN.`]);
    expect(promoted.status).toBe(0);
    const unknown = await admin('promote', uniqueEmail('nobody'));
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toMatch(/No account with the e-mail/);
    expect(unknown.stdout).toBe('');

    const after = await startTestApp({}, { database });
    const prisma = after.app.db.prisma;
    expect((await prisma.user.findUniqueOrThrow({ where: { id: user.userId } })).role).toBe('ADMIN');
    const entries = await prisma.auditEntry.findMany({ where: { targetUserId: user.userId } });
    expect(entries).toMatchObject([{ action: 'PROMOTE_ADMIN', actorUserId: user.userId, details: { via: 'cli' } }]);
  });

  it('refuses a DATABASE_URL it cannot reach in one line naming it, as the server does', { timeout: SERVER_PROCESS_TIMEOUT_MS }, async () => {
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'test', JWT_SECRET: TEST_JWT_SECRET, DATABASE_URL: 'postgres://admin:hunter2-secret@127.0.0.1:1/switchboard' };
    const refused = await run('npm', ['run', '--silent', 'admin', '--', 'promote', 'ada@example.com'], { env });
    expect(refused.status).toBe(1);
    expect(refused.stderr.trim().split('\n')).toEqual(['DATABASE_URL: cannot connect to PostgreSQL at 127.0.0.1:1 (ECONNREFUSED)']);
    expect(refused.stdout + refused.stderr).not.toContain('hunter2');
  });
});
