import { decodeGlobalId } from '../../src/global-id.js';
import { AuditLogDocument } from './admin-documents.js';
import { expectData, STRONG_PASSWORD, uniqueEmail, type TestApp } from './app.js';
import { RegisterDocument } from './documents.js';

/** Signs up with the given e-mail (or a fresh one); `id` is the global id, `userId` the row's. */
export async function signUp(t: TestApp, options: { email?: string; name?: string } = {}) {
  const email = options.email ?? uniqueEmail();
  const input = { email, password: STRONG_PASSWORD, name: options.name ?? 'Test User' };
  const { register } = expectData(await t.execute(RegisterDocument, { input }));
  return {
    email,
    password: STRONG_PASSWORD,
    token: register.accessToken,
    refreshToken: register.refreshToken,
    role: register.user.role,
    id: register.user.id,
    userId: decodeGlobalId(register.user.id).id,
  };
}

/** The audit entries about one user, oldest first, as an admin reads them. */
export async function auditEntriesAbout(t: TestApp, adminToken: string, targetId: string) {
  const log = expectData(await t.execute(AuditLogDocument, { first: 100 }, { token: adminToken })).auditLog;
  return log.edges.map((e) => e.node).filter((entry) => entry.target?.id === targetId).reverse();
}
