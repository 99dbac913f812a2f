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
});
