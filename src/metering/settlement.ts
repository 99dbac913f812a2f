import type { PrismaClient } from '../db/client.js';
import type { MessageStatus } from '../generated/prisma/client.js';
import type { ModelInfo } from '../model-catalog.js';
import type { UsageMetrics } from '../observability/metrics.js';
import { costMicros } from './pricing.js';
import { settleReservationSql, type Reservation } from './quota.js';

export interface FinalMessage {
  messageId: string;
  conversationId: string;
  userId: string;
  model: ModelInfo;
  status: MessageStatus;
  content: string;
  promptTokens: number;
  completionTokens: number;
  usageEstimated: boolean;
  finishReason?: string | null;
  error?: { code: string; message: string };
}

/** UTC calendar day of an instant, as the DATE the roll-ups are keyed by. */
export function utcDay(date: Date): Date {
  return new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()));
}

/** A generation in one of these is still running (or was, when its instance died). */
export const RUNNING_STATUSES: MessageStatus[] = ['PENDING', 'STREAMING'];

/**
 * Persists the final state of an assistant message with its usage, the daily roll-up and the
 * quota settlement in one transaction: either all of them are recorded or none. Only a message
 * still running is closed, so when two parties race to close it (the generation itself and a
 * recovery after its instance was presumed dead) usage is recorded and settled exactly once.
 * Returns false when the message was already final. What was recorded is also counted in
 * `metrics`, after the commit, so it is counted once too.
 */
export async function recordFinalMessage(
  prisma: PrismaClient,
  final: FinalMessage,
  reservation: Reservation,
  metrics: UsageMetrics,
  now = new Date(),
): Promise<boolean> {
  const totalTokens = final.promptTokens + final.completionTokens;
  const cost = costMicros(final.model, final);
  const day = utcDay(now);
  const recorded = await prisma.$transaction(async (tx) => {
    const closed = await tx.message.updateMany({
      where: { id: final.messageId, status: { in: RUNNING_STATUSES } },
      data: {
        status: final.status,
        content: final.content,
        promptTokens: final.promptTokens,
        completionTokens: final.completionTokens,
        totalTokens,
        costMicros: cost,
        usageEstimated: final.usageEstimated,
        finishReason: final.finishReason ?? null,
        errorCode: final.error?.code ?? null,
        errorMessage: final.error?.message ?? null,
        completedAt: now,
        leaseExpiresAt: null,
      },
    });
    if (closed.count === 0) return false;
    await tx.$executeRaw`
      INSERT INTO "UsageDaily" ("userId", "day", "model", "promptTokens", "completionTokens", "totalTokens", "costMicros", "requests")
      VALUES (${final.userId}::uuid, ${day}::date, ${final.model.id}, ${final.promptTokens}, ${final.completionTokens},
              ${totalTokens}, ${cost}, 1)
      ON CONFLICT ("userId", "day", "model") DO UPDATE SET
        "promptTokens" = "UsageDaily"."promptTokens" + EXCLUDED."promptTokens",
        "completionTokens" = "UsageDaily"."completionTokens" + EXCLUDED."completionTokens",
        "totalTokens" = "UsageDaily"."totalTokens" + EXCLUDED."totalTokens",
        "costMicros" = "UsageDaily"."costMicros" + EXCLUDED."costMicros",
        "requests" = "UsageDaily"."requests" + 1`;
    await settleReservationSql(tx, reservation, totalTokens);
    await tx.conversation.update({ where: { id: final.conversationId }, data: { updatedAt: now } });
    return true;
  });
  if (recorded) {
    const model = final.model.id;
    metrics.tokens.inc({ model, kind: 'prompt' }, final.promptTokens);
    metrics.tokens.inc({ model, kind: 'completion' }, final.completionTokens);
    metrics.costMicros.inc({ model }, Number(cost));
  }
  return recorded;
}
