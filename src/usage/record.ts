import type { PrismaClient } from '../db/client.js';
import type { MessageStatus } from '../generated/prisma/client.js';
import type { ModelInfo } from '../model-catalog.js';
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

/**
 * Persists the final state of an assistant message with its usage, the daily roll-up and the
 * quota settlement in one transaction: either all of them are recorded or none.
 */
export async function recordFinalMessage(
  prisma: PrismaClient,
  final: FinalMessage,
  reservation: Reservation,
  now = new Date(),
): Promise<void> {
  const totalTokens = final.promptTokens + final.completionTokens;
  const cost = costMicros(final.model, final);
  const day = utcDay(now);
  await prisma.$transaction([
    prisma.message.update({
      where: { id: final.messageId },
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
      },
    }),
    prisma.$executeRaw`
      INSERT INTO "UsageDaily" ("userId", "day", "model", "promptTokens", "completionTokens", "totalTokens", "costMicros", "requests")
      VALUES (${final.userId}::uuid, ${day}::date, ${final.model.id}, ${final.promptTokens}, ${final.completionTokens},
              ${totalTokens}, ${cost}, 1)
      ON CONFLICT ("userId", "day", "model") DO UPDATE SET
        "promptTokens" = "UsageDaily"."promptTokens" + EXCLUDED."promptTokens",
        "completionTokens" = "UsageDaily"."completionTokens" + EXCLUDED."completionTokens",
        "totalTokens" = "UsageDaily"."totalTokens" + EXCLUDED."totalTokens",
        "costMicros" = "UsageDaily"."costMicros" + EXCLUDED."costMicros",
        "requests" = "UsageDaily"."requests" + 1`,
    settleReservationSql(prisma, reservation, totalTokens),
    prisma.conversation.update({ where: { id: final.conversationId }, data: { updatedAt: now } }),
  ]);
}
