import { v7 as uuidv7 } from 'uuid';
import type { PrismaTx } from '../db/client.js';
import { AppError, badInput, notFound } from '../errors.js';
import type { Conversation, Message, Prisma } from '../generated/prisma/client.js';
import { refusalError, type ReserveDecision } from '../metering/metering.js';
import { PLACEHOLDER_TITLE, titleFromMessage } from '../chat/conversations.js';
import { storedToolChoice, type ToolSet } from '../chat/tools.js';

/** A message a send adds before its reply: the user's, or a tool's result. */
export interface NewMessage {
  /** Explicit, monotonic v7 ids: new messages sort in order, before their reply. */
  id: string;
  role: 'USER' | 'TOOL';
  content: string;
  /** On TOOL messages: the call it answers. */
  toolCallId?: string;
}

export interface SendWrites {
  userId: string;
  /** The conversation the message continues, as read before; none starts a new one. */
  existing?: Conversation;
  /** In order; the first user message titles a new conversation. */
  newMessages: NewMessage[];
  model: string;
  systemPrompt: string | null;
  /** After the new messages. */
  assistantMessageId: string;
  /** The tools the reply is offered, stored with it. */
  toolSet?: ToolSet;
  /** Tool results: the reply whose calls they answer, which must still end the conversation. */
  answers?: string;
  /** The reservation's parameters (Metering.reservationParams). */
  reservation: Record<string, unknown>;
  /** How many replies the user may have running at once. */
  maxRunning: number;
}

export interface SentMessages {
  conversation: Conversation;
  /** The last new message: the user's, or the last tool result. */
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
  const { existing, userId } = send;
  const conversationId = existing?.id ?? uuidv7();
  const userContent = send.newMessages.find((m) => m.role === 'USER')?.content;
  const title = userContent !== undefined && (!existing || existing.title === PLACEHOLDER_TITLE) ? titleFromMessage(userContent) : (existing?.title ?? PLACEHOLDER_TITLE);
  const tools = send.toolSet
    ? { tools: send.toolSet.tools as unknown as Prisma.JsonArray, toolChoice: storedToolChoice(send.toolSet.toolChoice) }
    : { tools: null, toolChoice: null };
  const params = {
    reservation: send.reservation,
    maxRunning: send.maxRunning,
    now: now.toISOString(),
    conversation: { id: conversationId, existing: Boolean(existing), title, model: send.model, systemPrompt: send.systemPrompt },
    newMessages: send.newMessages,
    assistantMessage: { id: send.assistantMessageId, model: send.model, ...tools },
    ...(send.answers ? { answers: send.answers } : {}),
  };
  const [row] = await db.$queryRaw<[{ decision: ReserveDecision }]>`
    SELECT "chat_send_message"(${JSON.stringify(params)}::jsonb) AS "decision"`;
  throwIfRefused(row.decision, send.maxRunning);

  const conversation: Conversation = existing
    ? { ...existing, title, updatedAt: now }
    : { id: conversationId, userId, title, model: send.model, systemPrompt: send.systemPrompt, archived: false, createdAt: now, updatedAt: now };
  const message = (fields: Pick<Message, 'id' | 'role' | 'content' | 'status' | 'model'> & Partial<Pick<Message, 'toolCallId' | 'tools' | 'toolChoice'>>): Message => ({
    toolCalls: null,
    toolCallId: null,
    tools: null,
    toolChoice: null,
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
  const last = send.newMessages.at(-1)!;
  return {
    conversation,
    userMessage: message({ id: last.id, role: last.role, content: last.content, status: 'COMPLETE', model: null, toolCallId: last.toolCallId ?? null }),
    assistantMessage: message({ id: send.assistantMessageId, role: 'ASSISTANT', content: '', status: 'STREAMING', model: send.model, ...tools }),
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
  // Tool results for a reply that was answered meanwhile (or that the conversation went on after).
  if (decision.refused === 'NOT_LAST_MESSAGE') throw badInput('These tool calls have been answered already, or the conversation went on after them', 'messageId');
  if (decision.refused) throw new Error(`unknown refusal from chat_send_message: ${decision.refused}`);
}
