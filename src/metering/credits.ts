import { v7 as uuidv7 } from 'uuid';
import type { PrismaClient, PrismaTx } from '../db/client.js';
import type { CreditEntryKind, CreditLedgerEntry, Prisma, User } from '../generated/prisma/client.js';

export interface CreditEntryInput {
  userId: string;
  kind: CreditEntryKind;
  /** Signed: GRANT, PURCHASE and positive ADJUSTMENT add; USAGE, REFUND, DISPUTE and negative ADJUSTMENT take away. */
  amountMicros: bigint;
  reason: string;
  stripeEventId?: string;
  stripePaymentIntentId?: string;
  stripeAmountCents?: number;
  actorUserId?: string;
  messageId?: string;
}

/**
 * Appends an entry to the append-only ledger and moves the balance cached on the user, in the
 * caller's transaction, through the database function that settlement uses too
 * (prisma/sql/credit_ledger_append.sql): it takes the user's row lock, so concurrent entries line
 * up and each `balanceAfterMicros` is the running balance, and refuses an amount of the wrong sign.
 */
export async function appendCreditEntry(tx: PrismaTx, entry: CreditEntryInput): Promise<CreditLedgerEntry> {
  const params = { ...entry, id: uuidv7(), amountMicros: entry.amountMicros.toString() };
  const [appended] = await tx.$queryRaw<CreditLedgerEntry[]>`SELECT * FROM "credit_ledger_append"(${JSON.stringify(params)}::jsonb)`;
  return appended!;
}

/** Creates an account with its sign-up credits, in one transaction. */
export async function createUserWithSignupCredits(
  prisma: PrismaClient,
  data: Prisma.UserCreateInput,
  signupCreditsMicros: number,
): Promise<User> {
  return prisma.$transaction(async (tx) => {
    const user = await tx.user.create({ data });
    if (signupCreditsMicros <= 0) return user;
    await appendCreditEntry(tx, { userId: user.id, kind: 'GRANT', amountMicros: BigInt(signupCreditsMicros), reason: 'Sign-up credits' });
    return tx.user.findUniqueOrThrow({ where: { id: user.id } });
  });
}

const GRANT_BATCH = 100;

/**
 * Gives the sign-up credits, once, to accounts created before credits existed. Safe on every
 * instance at once: each account's flag is cleared in the transaction that grants.
 */
export async function grantPendingSignupCredits(prisma: PrismaClient, signupCreditsMicros: number): Promise<number> {
  let granted = 0;
  for (;;) {
    const batch = await prisma.$transaction(async (tx) => {
      const users = await tx.$queryRaw<Array<{ id: string }>>`
        UPDATE "User" SET "signupCreditsPending" = false
        WHERE "id" IN (SELECT "id" FROM "User" WHERE "signupCreditsPending" LIMIT ${GRANT_BATCH} FOR UPDATE SKIP LOCKED)
        RETURNING "id"`;
      if (signupCreditsMicros > 0) {
        for (const { id } of users) {
          await appendCreditEntry(tx, { userId: id, kind: 'GRANT', amountMicros: BigInt(signupCreditsMicros), reason: 'Sign-up credits' });
        }
      }
      return users.length;
    });
    granted += batch;
    if (batch < GRANT_BATCH) return granted;
  }
}
