import type { PrismaClient } from '../db/client.js';
import { AppError } from '../errors.js';
import { callAlongRoute, type RouteCallDeps } from '../generation/route-call.js';
import { billedUsage } from '../generation/attempt-records.js';
import type { Logger } from '../logger.js';
import type { Metering } from '../metering/metering.js';
import { estimatePromptTokens, type ChatTurn } from '../metering/tokens.js';
import type { ModelInfo } from '../model-catalog.js';
import { titleFromMessage } from './conversations.js';

/** The most a title answer may take: a few words, whatever the model would rather say. */
const TITLE_MAX_TOKENS = 24;
const TITLE_TEMPERATURE = 0.2;
/** How much of the first message and of its reply the title model reads: enough to tell the subject, and a bounded cost. */
const USER_EXCERPT_CHARS = 1_500;
const REPLY_EXCERPT_CHARS = 1_000;

const INSTRUCTIONS =
  'You name chat conversations. Reply with a title of at most six words that says what the conversation below is about, ' +
  'in the language of its user: no quotes, no final punctuation, nothing else.';

/** What a title call is charged: its billed attempts, each at its deployment's price, under the catalog model that served it. */
type Charge = ReturnType<typeof billedUsage> & { model: string };

/** A new conversation whose first reply is under way, as the send that started it knows it. */
export interface TitleRequest {
  userId: string;
  /** The API key the conversation was started with: its budget pays for the title too. */
  apiKeyId?: string;
  conversationId: string;
  /** The title the send wrote (the first message's first line): replaced only while it is still the title. */
  automaticTitle: string;
  userContent: string;
  assistantMessageId: string;
}

export interface ConversationTitles {
  /**
   * Once `replyFinished` settles with the reply COMPLETE, asks the title model for a title and
   * writes it unless the conversation was renamed meanwhile. Runs in the background and never
   * throws: a title is a nicety, and without it the first-line title simply stays.
   */
  afterFirstReply(request: TitleRequest, replyFinished: Promise<unknown>): void;
  /** Shutdown: no title starts from now on, calls in flight are stopped, and each reservation is settled. */
  stopAll(): Promise<void>;
}

/**
 * Titles by a (cheap) model, metered like any call: the worst case is reserved before the call
 * and the real usage settled after it, so a user without quota or credits gets no model title.
 */
export function createConversationTitles(deps: {
  prisma: PrismaClient;
  metering: Metering;
  calls: RouteCallDeps;
  model: ModelInfo;
  /** The longest a title call may take. */
  timeoutMs: number;
  /** Added to the timeout for the reservation's lease: the sweep settles it only once the call is surely over. */
  leaseMs: number;
  logger: Logger;
}): ConversationTitles {
  const { prisma, metering, model, logger } = deps;
  const shutdown = new AbortController();
  const inFlight = new Set<Promise<void>>();

  const title = async (request: TitleRequest, replyFinished: Promise<unknown>) => {
    await replyFinished;
    if (shutdown.signal.aborted) return;
    const reply = await prisma.message.findUnique({ where: { id: request.assistantMessageId }, select: { status: true, content: true } });
    if (reply?.status !== 'COMPLETE' || shutdown.signal.aborted) return;

    const messages = titlePrompt(request.userContent, reply.content);
    const promptEstimate = estimatePromptTokens(messages);
    const maxTokens = Math.min(TITLE_MAX_TOKENS, model.maxOutputTokens);
    let reservation: { id: string };
    try {
      reservation = await metering.reserve(prisma, {
        userId: request.userId,
        apiKeyId: request.apiKeyId,
        kind: 'TITLE',
        model,
        promptEstimate,
        maxOutputTokens: maxTokens,
        leaseMs: deps.timeoutMs + deps.leaseMs,
      });
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      logger.info({ conversationId: request.conversationId, code: error.code }, 'no model title: the call was refused');
      return;
    }

    let charge: Charge | undefined;
    try {
      const answer = await callAlongRoute(
        deps.calls,
        model,
        { messages, maxTokens, temperature: TITLE_TEMPERATURE },
        { promptEstimate, deadline: Date.now() + deps.timeoutMs, signal: shutdown.signal },
      );
      const billed = answer.attempts.filter((a) => a.billed);
      if (billed.length > 0) charge = { ...billedUsage(billed), model: (answer.finishedBy ?? billed.at(-1)!.target).model.id };
      const cleaned = answer.text === undefined ? undefined : cleanTitle(answer.text);
      if (cleaned) await replaceAutomaticTitle(prisma, request, cleaned);
    } finally {
      // Settled whatever happened, after the title is written: whoever sees the charge sees the title.
      await settle(reservation.id, charge).catch((error: unknown) =>
        logger.error({ err: error, reservationId: reservation.id }, 'could not settle a title call; the sweep will'),
      );
    }
  };

  const settle = async (reservationId: string, charge: Charge | undefined) => {
    // No attempt did work the user pays for: the holds go back and no call is counted.
    if (!charge) return void (await metering.release(prisma, reservationId));
    const { usage, costMicros } = charge;
    const settled = await metering.settle(prisma, { reservationId, usage, by: 'RUN', price: model.price, model: charge.model, costMicros });
    if (settled) metering.countCharged(settled.model, usage, settled.costMicros);
  };

  return {
    afterFirstReply(request, replyFinished) {
      if (shutdown.signal.aborted) return;
      const task = title(request, replyFinished)
        .catch((error: unknown) => logger.warn({ err: error, conversationId: request.conversationId }, 'could not title a conversation'))
        .finally(() => inFlight.delete(task));
      inFlight.add(task);
    },
    async stopAll() {
      shutdown.abort();
      await Promise.all(inFlight);
    },
  };
}

/** What the title model is asked: the instructions, and the start of the first message and of its reply. */
function titlePrompt(userContent: string, replyContent: string): ChatTurn[] {
  const conversation = [`User: ${excerpt(userContent, USER_EXCERPT_CHARS)}`];
  if (replyContent) conversation.push(`Assistant: ${excerpt(replyContent, REPLY_EXCERPT_CHARS)}`);
  return [
    { role: 'system', content: INSTRUCTIONS },
    { role: 'user', content: conversation.join('\n\n') },
  ];
}

/** The start of a text, never ending in half a surrogate pair. */
function excerpt(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  const cut = text.slice(0, maxChars);
  return /[\uD800-\uDBFF]$/.test(cut) ? cut.slice(0, -1) : cut;
}

/**
 * The model's answer as a title: its first non-empty line, without a "Title:" label, quotes,
 * markdown marks or a final full stop, cut like a first-line title. Undefined when nothing is left.
 */
export function cleanTitle(answer: string): string | undefined {
  const line = answer
    .split('\n')
    .map((l) => l.replace(/\p{Cc}/gu, ' ').trim())
    .find((l) => l.length > 0);
  if (!line) return undefined;
  const bare = line
    .replace(/^title\s*:\s*/i, '')
    .replace(/^["'`“”‘’«»*#_\s]+|["'`“”‘’«»*_\s]+$/gu, '')
    .replace(/[.。]$/u, '')
    .trim();
  return bare ? titleFromMessage(bare) : undefined;
}

/**
 * Writes the model's title only while the conversation still has the title the send gave it:
 * one the user chose meanwhile stays. The conversation's `updatedAt` is left alone: a title is
 * not activity, and must not move the conversation up its owner's list.
 */
async function replaceAutomaticTitle(prisma: PrismaClient, request: TitleRequest, title: string): Promise<void> {
  await prisma.$executeRaw`
    UPDATE "Conversation" SET "title" = ${title}
    WHERE "id" = ${request.conversationId}::uuid AND "userId" = ${request.userId}::uuid AND "title" = ${request.automaticTitle}`;
}
