import type { PrismaClient, PrismaTx } from '../db/client.js';
import type { MessageStatus } from '../generated/prisma/client.js';
import type { Logger } from '../logger.js';
import type { Metering, SettledBy } from '../metering/metering.js';
import type { MeteredUsage } from '../metering/prices.js';

export interface FinalMessage {
  messageId: string;
  conversationId: string;
  status: MessageStatus;
  content: string;
  usage: MeteredUsage;
  usageEstimated: boolean;
  finishReason?: string | null;
  error?: { code: string; message: string };
}

/** A generation in one of these is still running (or was, when its instance died). */
export const RUNNING_STATUSES: MessageStatus[] = ['PENDING', 'STREAMING'];

export type FinalOutcome = 'recorded' | 'corrected' | 'already-final';

/**
 * Closes a generation in one transaction: its reservation is settled (quota, credits, roll-up)
 * and its message written with the usage and cost, or neither. Settling is exactly-once, so when
 * two parties race (the generation itself and a recovery after its instance was presumed dead)
 * one records it. When the generation itself comes second, with the real reply and usage, it
 * corrects what the recovery recorded by estimate, once.
 */
export async function recordFinalMessage(
  deps: { prisma: PrismaClient; metering: Metering; logger: Logger },
  final: FinalMessage,
  reservationId: string,
  by: SettledBy,
): Promise<FinalOutcome> {
  const { prisma, metering, logger } = deps;
  const now = new Date();
  const outcome = await prisma.$transaction(async (tx) => {
    const settled = await metering.settle(tx, reservationId, final.usage, by);
    if (settled) {
      await writeFinalMessage(tx, final, settled.costMicros, now, { onlyIfRunning: true });
      return { kind: 'recorded' as const, settled };
    }
    if (by !== 'RUN') return { kind: 'already-final' as const };
    const corrected = await metering.correct(tx, reservationId, final.usage);
    if (!corrected) return { kind: 'already-final' as const };
    await writeFinalMessage(tx, final, corrected.costMicros, now, { onlyIfRunning: false });
    return { kind: 'corrected' as const };
  });
  if (outcome.kind === 'recorded') metering.countCharged(outcome.settled.reservation.model, final.usage, outcome.settled.costMicros);
  if (outcome.kind === 'corrected') {
    logger.warn({ messageId: final.messageId }, 'corrected a generation closed while its instance was presumed dead, with its real usage');
  }
  return outcome.kind;
}

/** The message may be gone (its conversation deleted): then only the reservation is settled. */
async function writeFinalMessage(
  tx: PrismaTx,
  final: FinalMessage,
  cost: bigint,
  now: Date,
  options: { onlyIfRunning: boolean },
): Promise<void> {
  const { usage } = final;
  const written = await tx.message.updateMany({
    where: { id: final.messageId, ...(options.onlyIfRunning ? { status: { in: RUNNING_STATUSES } } : {}) },
    data: {
      status: final.status,
      content: final.content,
      promptTokens: usage.promptTokens,
      cachedTokens: usage.cachedTokens,
      completionTokens: usage.completionTokens,
      reasoningTokens: usage.reasoningTokens,
      totalTokens: usage.promptTokens + usage.completionTokens,
      costMicros: cost,
      usageEstimated: final.usageEstimated,
      finishReason: final.finishReason ?? null,
      errorCode: final.error?.code ?? null,
      errorMessage: final.error?.message ?? null,
      completedAt: now,
    },
  });
  if (written.count > 0) await tx.conversation.updateMany({ where: { id: final.conversationId }, data: { updatedAt: now } });
}
