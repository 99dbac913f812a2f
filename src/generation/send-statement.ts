import { v7 as uuidv7 } from 'uuid';
import type { PrismaTx } from '../db/client.js';
import { AppError, notFound } from '../errors.js';
import type { Conversation, Message } from '../generated/prisma/client.js';
import { refusalError, type ReserveDecision } from '../metering/metering.js';
import { PLACEHOLDER_TITLE, titleFromMessage } from '../chat/conversations.js';

export interface SendWrites {
  userId: string;
  /** The conversation the message continues, as read before; none starts a new one. */
  existing?: Conversation;
  content: string;
  /** The user message's images, as chat_send_message takes them (attachmentParams). */
  attachments?: Array<Record<string, unknown>>;
  model: string;
  systemPrompt: string | null;
  /** Explicit, monotonic v7 ids: the user message always sorts before its reply. */
  userMessageId: string;
  assistantMessageId: string;
  /** The reservation's parameters (Metering.reservationParams). */
  reservation: Record<string, unknown>;
  /** How many replies the user may have running at once. */
  maxRunning: number;
}

export interface SentMessages {
  conversation: Conversation;
  userMessage: Message;
  assistantMessage: Message;
}

/**
 * Reserves the call and writes the conversation and both messages in one statement (the
 * database function chat_send_message): one round trip, with the user's row lock held only
 * inside the database. A refused call writes nothing. The rows it wrote are built here from the
 * values it was given, every column explicit, so nothing needs to be read back.
 */
export async function writeSend(db: PrismaTx, send: SendWrites): Promise<SentMessages> {
  const now = new Date();
  const { existing, userId, content } = send;
  const conversationId = existing?.id ?? uuidv7();
  const title = !existing || existing.title === PLACEHOLDER_TITLE ? titleFromMessage(content) : existing.title;
  const params = {
    reservation: send.reservation,
    maxRunning: send.maxRunning,
    now: now.toISOString(),
    conversation: { id: conversationId, existing: Boolean(existing), title, model: send.model, systemPrompt: send.systemPrompt },
    userMessage: { id: send.userMessageId, content, ...(send.attachments?.length ? { attachments: send.attachments } : {}) },
    assistantMessage: { id: send.assistantMessageId, model: send.model },
  };
  const [row] = await db.$queryRaw<[{ decision: ReserveDecision }]>`
    SELECT "chat_send_message"(${JSON.stringify(params)}::jsonb) AS "decision"`;
  throwIfRefused(row.decision, send.maxRunning);

  const conversation: Conversation = existing
    ? { ...existing, title, updatedAt: now }
    : { id: conversationId, userId, title, model: send.model, systemPrompt: send.systemPrompt, archived: false, createdAt: now, updatedAt: now };
  const message = (fields: Pick<Message, 'id' | 'role' | 'content' | 'status' | 'model'>): Message => ({
    ...fields,
    conversationId,
    userId,
    promptTokens: 0,
    cachedTokens: 0,
    cacheWriteTokens: 0,
    completionTokens: 0,
    reasoningTokens: 0,
    totalTokens: 0,
    costMicros: 0n,
    usageEstimated: false,
    finishReason: null,
    errorCode: null,
    errorMessage: null,
    provider: null,
    createdAt: now,
    updatedAt: now,
    completedAt: null,
  });
  return {
    conversation,
    userMessage: message({ id: send.userMessageId, role: 'USER', content, status: 'COMPLETE', model: null }),
    assistantMessage: message({ id: send.assistantMessageId, role: 'ASSISTANT', content: '', status: 'STREAMING', model: send.model }),
  };
}

function throwIfRefused(decision: ReserveDecision, maxRunning: number): void {
  const refusal = refusalError(decision);
  if (refusal) throw refusal;
  if (decision.refused === 'TOO_MANY_RUNNING') {
    throw new AppError('RATE_LIMITED', `At most ${maxRunning} replies can be generated at once; wait for one to finish`, {
      retryAfter: 1,
    });
  }
  // Deleted since it was read: as if it had never been found.
  if (decision.refused === 'NO_CONVERSATION') throw notFound('Conversation');
  if (decision.refused) throw new Error(`unknown refusal from chat_send_message: ${decision.refused}`);
}
