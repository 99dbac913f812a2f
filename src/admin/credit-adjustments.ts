import type { PrismaClient } from '../db/client.js';
import { badInput } from '../errors.js';
import type { CreditLedgerEntry } from '../generated/prisma/client.js';
import { appendCreditEntry } from '../metering/credits.js';
import { recordAudit } from './audit-log.js';
import { lockUser } from '../db/user-lock.js';

export const MAX_REASON_LENGTH = 500;
/** One million dollars: anything larger is a typo (or worse), not an adjustment. */
export const MAX_ADJUSTMENT_MICROS = 1_000_000_000_000;

export interface CreditAdjustment {
  userId: string;
  /** Signed: positive adds credits, negative takes them away. */
  amountMicros: number;
  reason: string;
}

export function checkReason(raw: string): string {
  const reason = raw.trim();
  if (reason.length === 0) throw badInput('A reason is required', 'reason');
  if (reason.length > MAX_REASON_LENGTH) throw badInput(`The reason must be at most ${MAX_REASON_LENGTH} characters`, 'reason');
  return reason;
}

/**
 * Adds or takes away credits by hand, with a reason: an ADJUSTMENT in the ledger and its audit
 * entry, in one transaction. Credits held by running replies are not available to take away, so
 * an adjustment never leaves their settlement short.
 */
export async function adjustCredits(prisma: PrismaClient, actorUserId: string, input: CreditAdjustment): Promise<CreditLedgerEntry> {
  const reason = checkReason(input.reason);
  if (!Number.isSafeInteger(input.amountMicros) || input.amountMicros === 0) {
    throw badInput('The amount must be a non-zero whole number of micro-dollars', 'amountMicros');
  }
  if (Math.abs(input.amountMicros) > MAX_ADJUSTMENT_MICROS) {
    throw badInput(`The amount must be at most ${MAX_ADJUSTMENT_MICROS} micro-dollars either way`, 'amountMicros');
  }
  const amountMicros = BigInt(input.amountMicros);
  return prisma.$transaction(async (tx) => {
    const user = await lockUser(tx, input.userId);
    const available = user.creditBalanceMicros - user.creditHeldMicros;
    if (amountMicros < 0n && available + amountMicros < 0n) {
      throw badInput(`This adjustment would overdraw the account: ${available} micro-dollars are available`, 'amountMicros');
    }
    const entry = await appendCreditEntry(tx, { userId: user.id, kind: 'ADJUSTMENT', amountMicros, reason, actorUserId });
    await recordAudit(tx, {
      actorUserId,
      action: 'ADJUST_CREDITS',
      targetUserId: user.id,
      reason,
      details: {
        amountMicros: input.amountMicros,
        balanceBeforeMicros: Number(user.creditBalanceMicros),
        balanceAfterMicros: Number(entry.balanceAfterMicros),
        ledgerEntryId: entry.id,
      },
    });
    return entry;
  });
}
