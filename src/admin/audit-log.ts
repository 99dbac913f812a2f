import type { PrismaTx } from '../db/client.js';
import type { AuditEntry, Prisma } from '../generated/prisma/client.js';

/** What an audit entry records; PROMOTE_ADMIN is an account made admin by ADMIN_EMAILS or the CLI. */
export type AuditAction = 'ADJUST_CREDITS' | 'SET_ROLE' | 'SET_PLAN' | 'DEACTIVATE_USER' | 'REACTIVATE_USER' | 'PROMOTE_ADMIN';

export interface AuditRecord {
  actorUserId: string;
  action: AuditAction;
  targetUserId?: string;
  reason?: string;
  details?: Prisma.InputJsonObject;
}

/** Appends to the audit log in the caller's transaction, so an entry exists exactly when its change does. */
export function recordAudit(tx: PrismaTx, record: AuditRecord): Promise<AuditEntry> {
  return tx.auditEntry.create({ data: record });
}
