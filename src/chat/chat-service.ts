import { checkResponseFormat, type ResponseFormatInput } from './response-format.js';
import { attachmentParams, checkAttachments, HISTORY_ATTACHMENTS, imagePart, withHistoryImages, type AttachmentInput } from './attachments.js';
import { v7 as uuidv7 } from 'uuid';
import type { Config } from '../config.js';
import type { PrismaClient } from '../db/client.js';
import { AppError, badInput, notFound } from '../errors.js';
import { encodeGlobalId } from '../global-id.js';
import type { Conversation, Message } from '../generated/prisma/client.js';
import type { Logger } from '../logger.js';
import { isFinal, type Generations } from '../generation/generations.js';
import { RUNNING_STATUSES } from '../generation/finalize.js';
import type { Metering } from '../metering/metering.js';
import {
  checkSystemPrompt,
  deleteConversation,
  findOwnConversation,
  resolveModel,
  type ConversationDeps,
} from './conversations.js';
import { checkContent, checkGenerationOptions, planPrompt, type GenerationOptions } from './prompt.js';
import { writeSend } from '../generation/send-statement.js';
import type { StreamEvent } from '../streams/stream-hub.js';

export interface SendMessageInput extends GenerationOptions {
  conversationId?: string | null;
  content: string;
  model?: string | null;
  systemPrompt?: string | null;
  responseFormat?: ResponseFormatInput | null;
  attachments?: readonly AttachmentInput[] | null;
  stream?: boolean | null;
}

export interface SendMessageResult {
  conversation: Conversation;
  userMessage: Message;
  assistantMessage: Message;
}

const HISTORY_LIMIT = 200;

/** Chat use cases: sending (with its reservation), stopping and following replies. */
export class ChatService {
  constructor(
    private readonly deps: {
      prisma: PrismaClient;
      config: Config;
      metering: Metering;
      generations: Generations;
      logger: Logger;
    },
  ) {}

  get conversationDeps(): ConversationDeps {
    return { prisma: this.deps.prisma, models: this.deps.config.chat.models, defaultModel: this.deps.config.chat.defaultModel };
  }

  /** `apiKeyId`: the key the call is made with, whose budget applies too. */
  async sendMessage(userId: string, input: SendMessageInput, apiKeyId?: string): Promise<SendMessageResult> {
    const { prisma, config, generations } = this.deps;
    generations.assertAcceptingWork();
    const content = checkContent(input.content);
    const sampling = checkGenerationOptions(input);
    const responseFormat = checkResponseFormat(input.responseFormat);
    const existing = input.conversationId ? await findOwnConversation(prisma, userId, input.conversationId) : undefined;
    const model = resolveModel(config.chat.models, input.model ?? existing?.model ?? config.chat.defaultModel);
    const systemPrompt = checkSystemPrompt(input.systemPrompt) ?? existing?.systemPrompt ?? null;
    const images = config.chat.images;
    const attachments = await checkAttachments(input.attachments ?? [], images);
    if (attachments.length > 0 && !model.vision) throw badInput(`${model.id} does not take images; choose a model with vision`, 'attachments');
    const history = existing
      ? (
          await prisma.message.findMany({
            where: { conversationId: existing.id, status: { in: ['COMPLETE', 'STOPPED'] }, role: { not: 'SYSTEM' } },
            orderBy: { id: 'desc' },
            take: HISTORY_LIMIT,
            select: { role: true, content: true, attachments: HISTORY_ATTACHMENTS },
          })
        ).reverse()
      : [];
    // Earlier turns' images go again, as far as the per-call limit leaves room (none to a model without vision).
    const historyBudget = model.vision ? images.maxPerPrompt - attachments.length : 0;
    const plan = planPrompt({
      model,
      systemPrompt,
      history: await withHistoryImages(prisma, history.filter((m) => m.content.length > 0), historyBudget),
      content,
      images: attachments.map(imagePart),
      imageTokens: images.tokenEstimate,
      requestedMaxTokens: input.maxTokens ?? config.chat.defaultMaxTokens,
    });

    // The worst case is reserved in the statement that writes the messages: a refused call
    // leaves no trace. The reservation is a row of its own, so whatever happens to the messages
    // it is settled: by the generation, by a recovery, or by the sweep once its lease lapses.
    const ids = { userMessageId: uuidv7(), assistantMessageId: uuidv7() };
    const reservation = this.deps.metering.reservationParams({
      userId,
      apiKeyId,
      messageId: ids.assistantMessageId,
      model,
      promptEstimate: plan.promptEstimate,
      maxOutputTokens: plan.maxTokens,
      leaseMs: config.chat.generationLeaseMs,
    });
    const result = await writeSend(prisma, {
      userId,
      existing,
      content,
      attachments: attachments.map(attachmentParams),
      model: model.id,
      systemPrompt,
      ...ids,
      reservation: reservation.params,
      maxRunning: config.limits.maxConcurrentGenerations,
    });
    const finished = generations.start({
      messageId: result.assistantMessage.id,
      conversationId: result.conversation.id,
      userId,
      model,
      messages: plan.messages,
      maxTokens: plan.maxTokens,
      temperature: input.temperature ?? undefined,
      ...(sampling ? { sampling } : {}),
      ...(responseFormat ? { responseFormat } : {}),
      promptEstimate: plan.promptEstimate,
      reservationId: reservation.id,
    });
    // Shutdown began while this send was written: its reply was stopped at once; answer its final state.
    if ((input.stream ?? true) && generations.acceptingWork) return result;

    await finished;
    // The conversation may have been deleted while its reply ran: the reply went with it.
    const assistantMessage = await prisma.message.findUnique({ where: { id: result.assistantMessage.id } });
    if (!assistantMessage) throw notFound('Conversation');
    if (assistantMessage.status === 'FAILED') {
      const code = assistantMessage.errorCode === 'CONTENT_FILTERED' ? 'CONTENT_FILTERED' : 'UPSTREAM_ERROR';
      throw new AppError(code, assistantMessage.errorMessage ?? 'The model provider failed', {
        messageId: encodeGlobalId('Message', assistantMessage.id),
      });
    }
    const conversation = await prisma.conversation.findUnique({ where: { id: result.conversation.id } });
    if (!conversation) throw notFound('Conversation');
    return { ...result, conversation, assistantMessage };
  }

  /** Stops a generation wherever it runs; returns the message in its final state. */
  async stopGeneration(userId: string, messageId: string): Promise<Message> {
    const { prisma, generations } = this.deps;
    const message = await prisma.message.findFirst({ where: { id: messageId, userId } });
    if (!message) throw notFound('Message');
    if (message.role !== 'ASSISTANT') throw badInput('Only assistant messages are generated', 'messageId');
    if (isFinal(message)) return message;
    await generations.stop(messageId);
    return prisma.message.findUniqueOrThrow({ where: { id: messageId } });
  }

  /** Events for a subscriber: replay, then live, ending with `done`. Only the owner may follow. */
  async streamMessage(userId: string, messageId: string): Promise<AsyncGenerator<StreamEvent>> {
    this.deps.generations.assertAcceptingWork();
    const message = await this.deps.prisma.message.findFirst({ where: { id: messageId, userId } });
    if (!message) throw notFound('Message');
    if (message.role !== 'ASSISTANT') throw badInput('Only assistant messages stream', 'messageId');
    return this.deps.generations.follow(messageId);
  }

  /** A reply's final row, for its stream's `done` event: read once for all its subscribers here. */
  finalMessage(messageId: string): Promise<Message | null> {
    return this.deps.generations.finalMessage(messageId);
  }

  /** Deleting a conversation first stops its running generations, so their usage is recorded. */
  async deleteConversation(userId: string, conversationId: string): Promise<void> {
    const running = await this.deps.prisma.message.findMany({
      where: { conversationId, userId, status: { in: RUNNING_STATUSES } },
      select: { id: true },
    });
    await Promise.all(running.map((m) => this.stopGeneration(userId, m.id)));
    await deleteConversation(this.deps.prisma, userId, conversationId);
  }
}
