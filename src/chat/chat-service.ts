import { v7 as uuidv7 } from 'uuid';
import type { Config } from '../config.js';
import type { PrismaClient, PrismaTx } from '../db/client.js';
import { AppError, badInput, notFound } from '../errors.js';
import type { Conversation, Message } from '../generated/prisma/client.js';
import type { Logger } from '../logger.js';
import { reserveTokens, type Reservation } from '../usage/quota.js';
import {
  checkSystemPrompt,
  deleteConversation,
  findOwnConversation,
  resolveModel,
  titleFromMessage,
  type ConversationDeps,
} from './conversations.js';
import { RUNNING_STATUSES } from '../usage/record.js';
import type { GenerationRunner } from './generation.js';
import { checkContent, checkGenerationOptions, planPrompt } from './prompt.js';
import type { GenerationRecovery } from './recovery.js';
import type { StreamEvent, StreamHub } from './stream-hub.js';

export interface SendMessageInput {
  conversationId?: string | null;
  content: string;
  model?: string | null;
  systemPrompt?: string | null;
  maxTokens?: number | null;
  temperature?: number | null;
  stream?: boolean | null;
}

export interface SendMessageResult {
  conversation: Conversation;
  userMessage: Message;
  assistantMessage: Message;
}

const HISTORY_LIMIT = 200;
const STOP_WAIT_MS = 10_000;
export const isFinal = (message: Pick<Message, 'status'>) => !RUNNING_STATUSES.includes(message.status);

/** Chat use cases: sending (with quota reservation), stopping and following generations. */
export class ChatService {
  constructor(
    private readonly deps: {
      prisma: PrismaClient;
      config: Config;
      hub: StreamHub;
      runner: GenerationRunner;
      recovery: GenerationRecovery;
      logger: Logger;
    },
  ) {}

  get conversationDeps(): ConversationDeps {
    return { prisma: this.deps.prisma, models: this.deps.config.chat.models, defaultModel: this.deps.config.chat.defaultModel };
  }

  async sendMessage(userId: string, input: SendMessageInput): Promise<SendMessageResult> {
    const { prisma, config } = this.deps;
    const content = checkContent(input.content);
    checkGenerationOptions(input);
    const existing = input.conversationId ? await findOwnConversation(prisma, userId, input.conversationId) : undefined;
    const model = resolveModel(config.chat.models, input.model ?? existing?.model ?? config.chat.defaultModel);
    const systemPrompt = checkSystemPrompt(input.systemPrompt) ?? existing?.systemPrompt ?? null;
    const history = existing
      ? (
          await prisma.message.findMany({
            where: { conversationId: existing.id, status: { in: ['COMPLETE', 'STOPPED'] }, role: { not: 'SYSTEM' } },
            orderBy: { id: 'desc' },
            take: HISTORY_LIMIT,
            select: { role: true, content: true },
          })
        ).reverse()
      : [];
    const plan = planPrompt({
      model,
      systemPrompt,
      history: history.filter((m) => m.content.length > 0),
      content,
      requestedMaxTokens: input.maxTokens ?? config.chat.defaultMaxTokens,
    });

    // The worst case is reserved in the transaction that writes the messages: a refused call
    // leaves no trace, and no reservation can outlive a crash without its message.
    const user = await prisma.user.findUniqueOrThrow({ where: { id: userId }, select: { plan: true } });
    const { reservation, ...result } = await prisma.$transaction(async (tx) => {
      const reservation = await reserveTokens(tx, userId, plan.promptEstimate + plan.maxTokens, config.quotas[user.plan]);
      await this.checkConcurrentGenerations(tx, userId);
      const written = await this.writeMessages(tx, userId, existing, {
        content,
        model: model.id,
        systemPrompt,
        reservation,
        promptEstimate: plan.promptEstimate,
      });
      return { reservation, ...written };
    });
    const finished = this.deps.runner.start({
      messageId: result.assistantMessage.id,
      conversationId: result.conversation.id,
      userId,
      model,
      messages: plan.messages,
      maxTokens: plan.maxTokens,
      temperature: input.temperature ?? undefined,
      promptEstimate: plan.promptEstimate,
      reservation,
    });
    if (input.stream ?? true) return result;

    await finished;
    const assistantMessage = await prisma.message.findUniqueOrThrow({ where: { id: result.assistantMessage.id } });
    if (assistantMessage.status === 'FAILED') {
      throw new AppError('UPSTREAM_ERROR', assistantMessage.errorMessage ?? 'The model provider failed', {
        messageId: assistantMessage.id,
      });
    }
    const conversation = await prisma.conversation.findUniqueOrThrow({ where: { id: result.conversation.id } });
    return { ...result, conversation, assistantMessage };
  }

  /**
   * Runs after the reservation, whose UPDATE holds the user's quota row lock until commit: the
   * user's concurrent sends count one after another here, so the cap cannot be overshot.
   */
  private async checkConcurrentGenerations(tx: PrismaTx, userId: string): Promise<void> {
    const max = this.deps.config.limits.maxConcurrentGenerations;
    const running = await tx.message.count({ where: { userId, role: 'ASSISTANT', status: { in: RUNNING_STATUSES } } });
    if (running >= max) {
      throw new AppError('RATE_LIMITED', `At most ${max} replies can be generated at once; wait for one to finish`, {
        retryAfter: 1,
      });
    }
  }

  private async writeMessages(
    tx: PrismaTx,
    userId: string,
    existing: Conversation | undefined,
    message: { content: string; model: string; systemPrompt: string | null; reservation: Reservation; promptEstimate: number },
  ): Promise<SendMessageResult> {
    // Explicit, monotonic v7 ids: the user message always sorts before its reply.
    const conversationId = existing?.id ?? uuidv7();
    const retitle = existing?.title === 'New conversation';
    const conversation = existing
      ? await tx.conversation.update({
          where: { id: existing.id },
          data: retitle ? { title: titleFromMessage(message.content) } : { updatedAt: new Date() },
        })
      : await tx.conversation.create({
          data: {
            id: conversationId,
            userId,
            title: titleFromMessage(message.content),
            model: message.model,
            systemPrompt: message.systemPrompt,
          },
        });
    const userMessage = await tx.message.create({
      data: { id: uuidv7(), conversationId, userId, role: 'USER', content: message.content, status: 'COMPLETE' },
    });
    const assistantMessage = await tx.message.create({
      data: {
        id: uuidv7(),
        conversationId,
        userId,
        role: 'ASSISTANT',
        content: '',
        status: 'STREAMING',
        model: message.model,
        // What recovery needs to close the generation should this instance die while it runs.
        reservedTokens: message.reservation.tokens,
        reservationPeriod: message.reservation.period,
        promptEstimate: message.promptEstimate,
        leaseExpiresAt: new Date(Date.now() + this.deps.config.chat.generationLeaseMs),
      },
    });
    return { conversation, userMessage, assistantMessage };
  }

  /** Stops a generation wherever it runs; returns the message in its final state. */
  async stopGeneration(userId: string, messageId: string): Promise<Message> {
    const { prisma, hub, runner, recovery } = this.deps;
    const message = await prisma.message.findFirst({ where: { id: messageId, userId } });
    if (!message) throw notFound('Message');
    if (message.role !== 'ASSISTANT') throw badInput('Only assistant messages are generated', 'messageId');
    if (isFinal(message)) return message;

    const local = runner.stopLocal(messageId);
    if (local) {
      await local;
    } else {
      const ended = this.waitForEnd(messageId, STOP_WAIT_MS);
      await hub.requestStop(messageId);
      if (!(await ended)) {
        // No instance answered: the one running it is gone, so it is closed here, usage and all.
        await recovery.close(await prisma.message.findUniqueOrThrow({ where: { id: messageId } }), 'STOPPED');
      }
    }
    return prisma.message.findUniqueOrThrow({ where: { id: messageId } });
  }

  private async waitForEnd(messageId: string, timeoutMs: number): Promise<boolean> {
    const events = this.deps.hub.subscribe(messageId, () => this.replayFromDatabase(messageId));
    const timeout = new Promise<false>((resolve) => setTimeout(() => resolve(false), timeoutMs).unref());
    const ended = (async () => {
      for await (const event of events) if (event.done) return true;
      return false;
    })();
    const result = await Promise.race([ended, timeout]);
    await events.return(undefined);
    return result;
  }

  /** Events for a subscriber: replay, then live, ending with `done`. Only the owner may follow. */
  async streamMessage(userId: string, messageId: string): Promise<AsyncGenerator<StreamEvent>> {
    const message = await this.deps.prisma.message.findFirst({ where: { id: messageId, userId } });
    if (!message) throw notFound('Message');
    if (message.role !== 'ASSISTANT') throw badInput('Only assistant messages stream', 'messageId');
    return this.deps.hub.subscribe(messageId, () => this.replayFromDatabase(messageId));
  }

  /** A finished message whose replay buffer has expired is replayed from what was persisted. */
  private async replayFromDatabase(messageId: string): Promise<StreamEvent[] | null> {
    const message = await this.deps.prisma.message.findUnique({ where: { id: messageId } });
    if (!message || !isFinal(message)) return null;
    const events: StreamEvent[] = [];
    if (message.content) events.push({ messageId, seq: 1, delta: message.content, done: false });
    events.push({ messageId, seq: events.length + 1, delta: '', done: true });
    return events;
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
