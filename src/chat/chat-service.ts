import { checkResponseFormat, type ResponseFormatInput } from './response-format.js';
import { attachmentParams, checkAttachments, imagePart, withStoredImages, type AttachmentInput } from './attachments.js';
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
  resolveModel,
  type ConversationDeps,
} from './conversations.js';
import { askedOptionsToStore, checkContent, checkGenerationOptions, planPrompt, storedAskedOptions, type GenerationOptions } from './prompt.js';
import { writeSend, type ToolResultMessage } from '../generation/send-statement.js';
import type { ChatTurn } from '../metering/tokens.js';
import {
  chatTurnOf,
  checkToolResults,
  checkTools,
  storedToolCalls,
  storedToolSet,
  toolChoiceAfterResults,
  type ToolInput,
  type ToolResultInput,
  type ToolSet,
} from './tools.js';
import type { ConversationTitles } from './titles.js';
import {
  assertEditable,
  assertRegenerable,
  branchHistory,
  findOwnConversationWithHistory,
  findOwnMessage,
  selectBranch,
  type HistoryTurnWithImages,
} from './message-tree.js';
import type { StreamEvent } from '../streams/stream-hub.js';

export interface SendMessageInput extends GenerationOptions {
  conversationId?: string | null;
  content: string;
  model?: string | null;
  systemPrompt?: string | null;
  responseFormat?: ResponseFormatInput | null;
  tools?: ToolInput[] | null;
  toolChoice?: string | null;
  attachments?: readonly AttachmentInput[] | null;
  stream?: boolean | null;
}

export interface SubmitToolResultsInput {
  /** The reply that asked for the tools. */
  messageId: string;
  results: ToolResultInput[];
  stream?: boolean | null;
}

export interface RegenerateMessageInput {
  messageId: string;
  model?: string | null;
  stream?: boolean | null;
}

export interface EditMessageInput {
  messageId: string;
  content: string;
  stream?: boolean | null;
}

export interface SendMessageResult {
  conversation: Conversation;
  /**
   * The user message the reply answers: the new one, or for a regenerated reply the one it answers
   * again; after tool results, the last TOOL message.
   */
  userMessage: Message;
  assistantMessage: Message;
}

/** Chat use cases: sending (with its reservation), stopping and following replies. */
export class ChatService {
  constructor(
    private readonly deps: {
      prisma: PrismaClient;
      config: Config;
      metering: Metering;
      generations: Generations;
      logger: Logger;
      /** Titles new conversations by a model (TITLE_MODEL); absent, the first-line title stays. */
      titles?: ConversationTitles;
    },
  ) {}

  get conversationDeps(): ConversationDeps {
    return { prisma: this.deps.prisma, models: this.deps.config.chat.models, defaultModel: this.deps.config.chat.defaultModel };
  }

  /** `apiKeyId`: the key the call is made with, whose budget applies too. */
  async sendMessage(userId: string, input: SendMessageInput, apiKeyId?: string): Promise<SendMessageResult> {
    const { prisma } = this.deps;
    this.deps.generations.assertAcceptingWork();
    const content = checkContent(input.content);
    const existing = input.conversationId ? await findOwnConversationWithHistory(prisma, userId, input.conversationId) : undefined;
    return this.startReply(userId, apiKeyId, input, {
      existing: existing?.conversation,
      history: existing?.history ?? [],
      userMessage: { id: uuidv7(), content },
    });
  }

  /** A new reply beside an ended one (same parent), on a branch that becomes current. */
  async regenerateMessage(userId: string, input: RegenerateMessageInput, apiKeyId?: string): Promise<SendMessageResult> {
    const { prisma } = this.deps;
    this.deps.generations.assertAcceptingWork();
    const message = await findOwnMessage(prisma, userId, input.messageId);
    assertRegenerable(message);
    // What it answers: the user's question, or the last result of the tools an earlier reply called.
    const question = message.parent;
    if (question?.role !== 'USER' && question?.role !== 'TOOL') throw badInput('This reply answers no message', 'messageId');
    const toolSet = storedToolSet(message);
    // Asked for as the reply it replaces was: its sampling, output cap and response format.
    return this.startReply(userId, apiKeyId, { ...storedAskedOptions(message), model: input.model, stream: input.stream }, {
      existing: message.conversation,
      history: await branchHistory(prisma, question.parentId),
      answered: question,
      ...(question.role === 'TOOL' ? { newTurns: [chatTurnOf(question)] } : {}),
      parentId: question.id,
      // The new reply is offered what the one it replaces was.
      ...(toolSet ? { toolSet } : {}),
    });
  }

  /**
   * Stores one TOOL message per result, after the reply that asked for the tools, and starts the
   * next reply, offered the same tools (see toolChoiceAfterResults). The reply must be the
   * caller's and COMPLETE with finish reason `tool_calls`, and its calls not answered yet.
   */
  async submitToolResults(userId: string, input: SubmitToolResultsInput, apiKeyId?: string): Promise<SendMessageResult> {
    const { prisma, config } = this.deps;
    this.deps.generations.assertAcceptingWork();
    const reply = await findOwnMessage(prisma, userId, input.messageId);
    if (reply.role !== 'ASSISTANT' || reply.status !== 'COMPLETE' || reply.finishReason !== 'tool_calls') {
      throw badInput('Only a complete reply that asked for tools takes tool results', 'messageId');
    }
    const results = checkToolResults(storedToolCalls(reply), input.results, config.limits.tools);
    const stored = storedToolSet(reply);
    const toolResults = results.map((result) => ({ id: uuidv7(), ...result }));
    return this.startReply(userId, apiKeyId, { ...storedAskedOptions(reply), model: reply.model, stream: input.stream }, {
      existing: reply.conversation,
      history: await branchHistory(prisma, reply.parentId),
      // The reply and its results are sent whole, never cut to fit: a provider refuses one without the other.
      newTurns: [chatTurnOf(reply), ...toolResults.map((r): ChatTurn => ({ role: 'tool', content: r.content, toolCallId: r.toolCallId }))],
      toolResults,
      parentId: reply.id,
      ...(stored ? { toolSet: { ...stored, toolChoice: toolChoiceAfterResults(stored.toolChoice) } } : {}),
    });
  }

  /** A new user message beside an earlier one (same parent) and its reply: a new branch, now current. */
  async editMessage(userId: string, input: EditMessageInput, apiKeyId?: string): Promise<SendMessageResult> {
    const { prisma } = this.deps;
    this.deps.generations.assertAcceptingWork();
    const content = checkContent(input.content);
    const message = await findOwnMessage(prisma, userId, input.messageId);
    assertEditable(message);
    return this.startReply(userId, apiKeyId, { stream: input.stream }, {
      existing: message.conversation,
      history: await branchHistory(prisma, message.parentId),
      userMessage: { id: uuidv7(), content },
      parentId: message.parentId,
    });
  }

  /**
   * Plans the prompt, reserves the call's worst case and writes the new messages in one
   * statement, then starts the reply. `userMessage`: the user's new turn, written before the
   * reply; `answered`: the user's turn when it is already stored (a regenerated reply). `parentId`:
   * where the new messages go in the tree (undefined: they continue the current branch).
   * `toolResults` (with `newTurns`, what the prompt ends with) answer the reply at `parentId`;
   * `toolSet`: the tools stored with an earlier reply, instead of those the input offers.
   */
  private async startReply(
    userId: string,
    apiKeyId: string | undefined,
    input: GenerationOptions &
      Pick<SendMessageInput, 'model' | 'systemPrompt' | 'responseFormat' | 'tools' | 'toolChoice' | 'attachments' | 'stream'>,
    turn: {
      existing?: Conversation;
      history: HistoryTurnWithImages[];
      userMessage?: { id: string; content: string };
      answered?: Message & Pick<HistoryTurnWithImages, 'attachments'>;
      parentId?: string | null;
      toolResults?: ToolResultMessage[];
      newTurns?: ChatTurn[];
      toolSet?: ToolSet;
    },
  ): Promise<SendMessageResult> {
    const { prisma, config, generations } = this.deps;
    const { existing } = turn;
    const sampling = checkGenerationOptions(input);
    const responseFormat = checkResponseFormat(input.responseFormat);
    const asked = askedOptionsToStore(input);
    const toolSet = turn.toolSet ?? checkTools(input.tools, input.toolChoice, config.limits.tools);
    const model = resolveModel(config.chat.models, input.model ?? existing?.model ?? config.chat.defaultModel);
    const systemPrompt = checkSystemPrompt(input.systemPrompt) ?? existing?.systemPrompt ?? null;
    const images = config.chat.images;
    const attachments = await checkAttachments(input.attachments ?? [], images);
    if (attachments.length > 0 && !model.vision) throw badInput(`${model.id} does not take images; choose a model with vision`, 'attachments');
    // The images of earlier turns (and of the question a regenerated reply answers) go again, as far
    // as the per-call limit leaves room; none go to a model without vision.
    const resent = await withStoredImages(
      prisma,
      turn.answered ? [...turn.history, turn.answered] : turn.history,
      model.vision ? images.maxPerPrompt - attachments.length : 0,
    );
    const plan = planPrompt({
      model,
      systemPrompt,
      history: turn.answered ? resent.slice(0, -1) : resent,
      content: turn.userMessage?.content ?? turn.answered?.content ?? '',
      images: turn.answered ? resent.at(-1)?.images : attachments.map(imagePart),
      imageTokens: images.tokenEstimate,
      requestedMaxTokens: input.maxTokens ?? config.chat.defaultMaxTokens,
      ...(turn.newTurns ? { newTurns: turn.newTurns } : {}),
      tools: toolSet?.tools,
    });

    // The worst case is reserved in the statement that writes the messages: a refused call
    // leaves no trace. The reservation is a row of its own, so whatever happens to the messages
    // it is settled: by the generation, by a recovery, or by the sweep once its lease lapses.
    const assistantMessageId = uuidv7();
    const reservation = this.deps.metering.reservationParams({
      userId,
      apiKeyId,
      messageId: assistantMessageId,
      model,
      promptEstimate: plan.promptEstimate,
      maxOutputTokens: plan.maxTokens,
      leaseMs: config.chat.generationLeaseMs,
    });
    const sent = await writeSend(prisma, {
      userId,
      existing,
      ...(turn.userMessage ? { userMessage: { ...turn.userMessage, attachments: attachments.map(attachmentParams) } } : {}),
      ...(turn.parentId !== undefined ? { parentId: turn.parentId } : {}),
      ...(turn.toolResults ? { toolResults: turn.toolResults } : {}),
      ...(toolSet ? { toolSet } : {}),
      ...(asked ? { generationOptions: asked } : {}),
      model: model.id,
      systemPrompt,
      assistantMessageId,
      reservation: reservation.params,
      maxRunning: config.limits.maxConcurrentGenerations,
    });
    const userMessage = sent.userMessage ?? turn.answered;
    if (!userMessage) throw new Error('a reply must answer a user message');
    const result = { ...sent, userMessage };
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
      ...(toolSet ? { toolSet } : {}),
      promptEstimate: plan.promptEstimate,
      reservationId: reservation.id,
    });
    // The send that gave the conversation its first-line title asks for a model's once the reply
    // completes here; a reply closed by another instance's recovery gets none.
    if (result.conversation.title !== existing?.title) {
      this.deps.titles?.afterFirstReply(
        {
          userId,
          apiKeyId,
          conversationId: result.conversation.id,
          automaticTitle: result.conversation.title,
          userContent: userMessage.content,
          assistantMessageId: result.assistantMessage.id,
        },
        finished,
      );
    }
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

  /** Makes the branch through a message current (to its newest leaf). */
  selectBranch(userId: string, messageId: string, query?: Parameters<typeof selectBranch>[3]): Promise<Conversation> {
    return selectBranch(this.deps.prisma, userId, messageId, query);
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
    // A reply that runs here is known to be the user's without a read: the common case, a client
    // following the reply it just asked for.
    if (!this.deps.generations.runsHereFor(userId, messageId)) {
      const message = await this.deps.prisma.message.findFirst({ where: { id: messageId, userId }, select: { role: true } });
      if (!message) throw notFound('Message');
      if (message.role !== 'ASSISTANT') throw badInput('Only assistant messages stream', 'messageId');
    }
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
