import { v7 as uuidv7 } from 'uuid';
import type { PrismaTx } from '../db/client.js';
import { AppError, badInput, notFound } from '../errors.js';
import type { Conversation, Message, Prisma } from '../generated/prisma/client.js';
import { refusalError, type ReserveDecision } from '../metering/metering.js';
import { PLACEHOLDER_TITLE, titleFromMessage } from '../chat/conversations.js';
import { storedToolChoice, type ToolSet } from '../chat/tools.js';

/** A tool's result, stored as a TOOL message. */
export interface ToolResultMessage {
  id: string;
  content: string;
  /** The call it answers. */
  toolCallId: string;
}

export interface SendWrites {
  userId: string;
  /** The conversation the message continues, as read before; none starts a new one. */
  existing?: Conversation;
  /** The user's new message; none when a reply is regenerated. */
  userMessage?: { id: string; content: string; attachments?: Array<Record<string, unknown>> };
  /**
   * The message the new ones follow, starting a branch beside its other children (an edit, a
   * regenerated reply); undefined: they continue the current branch.
   */
  parentId?: string | null;
  /**
   * The results of the tool calls of the reply at `parentId`, in order, instead of a user
   * message; refused when that reply has been answered already.
   */
  toolResults?: ToolResultMessage[];
  model: string;
  systemPrompt: string | null;
  /** Explicit, monotonic v7 ids: the user message always sorts before its reply. */
  assistantMessageId: string;
  /** The tools the reply is offered, stored with it. */
  toolSet?: ToolSet;
  /** How the client asked for the reply (checked), stored with it. */
  generationOptions?: Record<string, unknown>;
  /** The reservation's parameters (Metering.reservationParams). */
  reservation: Record<string, unknown>;
  /** How many replies the user may have running at once. */
  maxRunning: number;
}

export interface SentMessages {
  conversation: Conversation;
  /** The user's new message; after tool results, the last TOOL message. */
  userMessage?: Message;
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
  const { existing, userId, userMessage } = send;
  const conversationId = existing?.id ?? uuidv7();
  const title = userMessage && (!existing || existing.title === PLACEHOLDER_TITLE) ? titleFromMessage(userMessage.content) : (existing?.title ?? PLACEHOLDER_TITLE);
  const toolResults = send.toolResults ?? [];
  const tools = send.toolSet
    ? { tools: send.toolSet.tools as unknown as Prisma.JsonArray, toolChoice: storedToolChoice(send.toolSet.toolChoice) }
    : { tools: null, toolChoice: null };
  const asked = { ...tools, generationOptions: (send.generationOptions ?? null) as Prisma.JsonObject | null };
  const params = {
    reservation: send.reservation,
    maxRunning: send.maxRunning,
    now: now.toISOString(),
    conversation: { id: conversationId, existing: Boolean(existing), title, model: send.model, systemPrompt: send.systemPrompt },
    ...(send.parentId !== undefined ? { parentId: send.parentId } : {}),
    // A message's images (attachmentParams) are written with it.
    messages: userMessage
      ? [{ id: userMessage.id, role: 'USER', content: userMessage.content, ...withAttachments(userMessage.attachments) }]
      : toolResults.map((result) => ({ ...result, role: 'TOOL' })),
    ...(toolResults.length > 0 ? { answersToolCalls: true } : {}),
    assistantMessage: { id: send.assistantMessageId, model: send.model, ...asked },
  };
  const [row] = await db.$queryRaw<[{ decision: ReserveDecision & { parentId?: string | null } }]>`
    SELECT "chat_send_message"(${JSON.stringify(params)}::jsonb) AS "decision"`;
  throwIfRefused(row.decision, send.maxRunning);
  const firstParentId = row.decision.parentId ?? null;

  const conversation: Conversation = existing
    ? { ...existing, title, updatedAt: now }
    : { id: conversationId, userId, title, model: send.model, systemPrompt: send.systemPrompt, archived: false, createdAt: now, updatedAt: now };
  const message = (
    fields: Pick<Message, 'id' | 'role' | 'content' | 'status' | 'model' | 'parentId'> & Partial<Pick<Message, 'toolCallId' | 'tools' | 'toolChoice' | 'generationOptions'>>,
  ): Message => ({
    toolCalls: null,
    toolCallId: null,
    tools: null,
    toolChoice: null,
    generationOptions: null,
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
    onCurrentBranch: true,
    createdAt: now,
    updatedAt: now,
    completedAt: null,
  });
  const lastResult = toolResults.at(-1);
  if (lastResult) {
    const lastParentId = toolResults.at(-2)?.id ?? firstParentId;
    return {
      conversation,
      userMessage: message({ ...lastResult, role: 'TOOL', status: 'COMPLETE', model: null, parentId: lastParentId }),
      assistantMessage: message({ id: send.assistantMessageId, role: 'ASSISTANT', content: '', status: 'STREAMING', model: send.model, parentId: lastResult.id, ...asked }),
    };
  }
  return {
    conversation,
    ...(userMessage
      ? { userMessage: message({ id: userMessage.id, role: 'USER', content: userMessage.content, status: 'COMPLETE', model: null, parentId: firstParentId }) }
      : {}),
    assistantMessage: message({
      id: send.assistantMessageId,
      role: 'ASSISTANT',
      content: '',
      status: 'STREAMING',
      model: send.model,
      parentId: userMessage ? userMessage.id : firstParentId,
      ...asked,
    }),
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
  if (decision.refused === 'NO_PARENT') throw notFound('Message');
  // Tool results for a reply that was answered meanwhile (or that the conversation went on after).
  if (decision.refused === 'TOOL_CALLS_ANSWERED') throw badInput('These tool calls have been answered already, or the conversation went on after them', 'messageId');
  if (decision.refused) throw new Error(`unknown refusal from chat_send_message: ${decision.refused}`);
}

const withAttachments = (attachments: Array<Record<string, unknown>> | undefined) => (attachments?.length ? { attachments } : {});
