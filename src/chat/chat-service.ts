import { checkResponseFormat, type ResponseFormatInput } from './response-format.js';
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
import { checkContent, checkGenerationOptions, planPrompt, type GenerationOptions, type PromptPlan } from './prompt.js';
import { writeSend, type SendWrites } from '../generation/send-statement.js';
import type { GenerationJob } from '../generation/runner.js';
import type { ModelInfo } from '../model-catalog.js';
import {
  carriesContent,
  chatTurnOf,
  checkToolResults,
  checkTools,
  storedToolCalls,
  storedToolSet,
  toolChoiceAfterResults,
  type ToolInput,
  type ToolResultInput,
} from './tools.js';
import type { StreamEvent } from '../streams/stream-hub.js';

export interface SendMessageInput extends GenerationOptions {
  conversationId?: string | null;
  content: string;
  model?: string | null;
  systemPrompt?: string | null;
  responseFormat?: ResponseFormatInput | null;
  tools?: ToolInput[] | null;
  toolChoice?: string | null;
  stream?: boolean | null;
}

export interface SubmitToolResultsInput {
  /** The reply that asked for the tools. */
  messageId: string;
  results: ToolResultInput[];
  stream?: boolean | null;
}

export interface SendMessageResult {
  conversation: Conversation;
  /** The user's message; for tool results, the last of the TOOL messages. */
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
    const toolSet = checkTools(input.tools, input.toolChoice, config.limits.tools);
    const existing = input.conversationId ? await findOwnConversation(prisma, userId, input.conversationId) : undefined;
    const model = resolveModel(config.chat.models, input.model ?? existing?.model ?? config.chat.defaultModel);
    const systemPrompt = checkSystemPrompt(input.systemPrompt) ?? existing?.systemPrompt ?? null;
    const plan = planPrompt({
      model,
      systemPrompt,
      history: existing ? await this.history(existing.id) : [],
      content,
      requestedMaxTokens: input.maxTokens ?? config.chat.defaultMaxTokens,
      tools: toolSet?.tools,
    });
    return this.startReply({
      userId,
      apiKeyId,
      model,
      plan,
      writes: { existing, newMessages: [{ id: uuidv7(), role: 'USER', content }], model: model.id, systemPrompt, toolSet },
      job: {
        temperature: input.temperature ?? undefined,
        ...(sampling ? { sampling } : {}),
        ...(responseFormat ? { responseFormat } : {}),
        ...(toolSet ? { toolSet } : {}),
      },
      stream: input.stream ?? true,
    });
  }

  /**
   * Stores one TOOL message per result and starts the next reply, offered the same tools (see
   * toolChoiceAfterResults). The reply must be the caller's, COMPLETE with finish reason
   * `tool_calls`, and still the conversation's last message: results are submitted once.
   */
  async submitToolResults(userId: string, input: SubmitToolResultsInput, apiKeyId?: string): Promise<SendMessageResult> {
    const { prisma, config, generations } = this.deps;
    generations.assertAcceptingWork();
    const reply = await prisma.message.findFirst({ where: { id: input.messageId, userId }, include: { conversation: true } });
    if (!reply) throw notFound('Message');
    if (reply.role !== 'ASSISTANT' || reply.status !== 'COMPLETE' || reply.finishReason !== 'tool_calls') {
      throw badInput('Only a complete reply that asked for tools takes tool results', 'messageId');
    }
    const results = checkToolResults(storedToolCalls(reply), input.results, config.limits.tools);
    const stored = storedToolSet(reply);
    const toolSet = stored && { ...stored, toolChoice: toolChoiceAfterResults(stored.toolChoice) };
    const existing = reply.conversation;
    const model = resolveModel(config.chat.models, reply.model ?? existing.model);
    const newMessages = results.map((result) => ({ id: uuidv7(), role: 'TOOL' as const, content: result.content, toolCallId: result.toolCallId }));
    const plan = planPrompt({
      model,
      systemPrompt: existing.systemPrompt,
      history: await this.history(existing.id, reply.id),
      content: '',
      newTurns: [chatTurnOf(reply), ...newMessages.map((m) => chatTurnOf({ ...m, toolCalls: null }))],
      requestedMaxTokens: config.chat.defaultMaxTokens,
      tools: toolSet?.tools,
    });
    return this.startReply({
      userId,
      apiKeyId,
      model,
      plan,
      writes: { existing, newMessages, model: model.id, systemPrompt: existing.systemPrompt, toolSet, answers: reply.id },
      job: toolSet ? { toolSet } : {},
      stream: input.stream ?? true,
    });
  }

  /** The conversation's messages sent as history (before `beforeId` when given), oldest first. */
  private async history(conversationId: string, beforeId?: string) {
    const messages = await this.deps.prisma.message.findMany({
      where: { conversationId, status: { in: ['COMPLETE', 'STOPPED'] }, role: { not: 'SYSTEM' }, ...(beforeId ? { id: { lt: beforeId } } : {}) },
      orderBy: { id: 'desc' },
      take: HISTORY_LIMIT,
      select: { role: true, content: true, toolCalls: true, toolCallId: true },
    });
    return messages.reverse().filter(carriesContent);
  }

  /**
   * Reserves the reply, writes the new messages with it and starts it; with `stream: false`,
   * waits for it and answers its final state.
   */
  private async startReply(send: {
    userId: string;
    apiKeyId?: string;
    model: ModelInfo;
    plan: PromptPlan;
    writes: Omit<SendWrites, 'userId' | 'assistantMessageId' | 'reservation' | 'maxRunning'>;
    job: Pick<GenerationJob, 'temperature' | 'sampling' | 'responseFormat' | 'toolSet'>;
    stream: boolean;
  }): Promise<SendMessageResult> {
    const { prisma, config, generations } = this.deps;
    const { userId, model, plan } = send;
    // The worst case is reserved in the statement that writes the messages: a refused call
    // leaves no trace. The reservation is a row of its own, so whatever happens to the messages
    // it is settled: by the generation, by a recovery, or by the sweep once its lease lapses.
    const assistantMessageId = uuidv7();
    const reservation = this.deps.metering.reservationParams({
      userId,
      apiKeyId: send.apiKeyId,
      messageId: assistantMessageId,
      model,
      promptEstimate: plan.promptEstimate,
      maxOutputTokens: plan.maxTokens,
      leaseMs: config.chat.generationLeaseMs,
    });
    const result = await writeSend(prisma, {
      ...send.writes,
      userId,
      assistantMessageId,
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
      ...send.job,
      promptEstimate: plan.promptEstimate,
      reservationId: reservation.id,
    });
    // Shutdown began while this send was written: its reply was stopped at once; answer its final state.
    if (send.stream && generations.acceptingWork) return result;

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
