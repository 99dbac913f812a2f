import type { StreamEvent, ToolCallDelta as StreamedToolCallDelta } from '../../streams/stream-hub.js';
import { storedToolCalls } from '../../chat/tools.js';
import type { ToolCall as StoredToolCall } from '../../metering/tokens.js';
import type { Conversation, Message } from '../../generated/prisma/client.js';
import { builder } from '../builder.js';
import { ownedByViewer } from '../ownership.js';
import { MUTATION_RESULT, READ, readGuarded } from '../read-scopes.js';
import { requireViewer } from '../context.js';
import { AttachmentInput } from './attachment.js';
import { streamEventLeaves, streamEventToolCallDeltas, toolCallDeltaLeaves } from './stream-event-fields.js';
import { ConversationRef } from './conversation.js';

const MessageRole = builder.enumType('MessageRole', {
  values: ['SYSTEM', 'USER', 'ASSISTANT', 'TOOL'] as const,
  description: "TOOL: a tool's result, answering one of the reply's tool calls (see toolCallId).",
});
const MessageStatus = builder.enumType('MessageStatus', {
  values: ['PENDING', 'STREAMING', 'COMPLETE', 'STOPPED', 'FAILED'] as const,
});

const ToolCall = builder.objectRef<StoredToolCall>('ToolCall').implement({
  description: 'A call the model asked for. Run the tool and answer with submitToolResults.',
  fields: (t) => ({
    id: t.exposeString('id', { description: 'What the result names (toolCallId).' }),
    name: t.exposeString('name', { description: 'The tool to call.' }),
    arguments: t.exposeString('arguments', { description: 'The JSON text the model wrote (not checked against the schema: parse it with care).' }),
  }),
});

const ToolCallDelta = builder.objectRef<StreamedToolCallDelta>('ToolCallDelta').implement({
  description: "A piece of a tool call as it streams: the call at index begins with its id and name; its arguments' JSON text then comes in pieces.",
  fields: (t) => ({
    index: t.int({ description: 'Which call of the reply, from 0.', resolve: toolCallDeltaLeaves.index }),
    id: t.string({ nullable: true, resolve: toolCallDeltaLeaves.id }),
    name: t.string({ nullable: true, resolve: toolCallDeltaLeaves.name }),
    argumentsDelta: t.string({ resolve: toolCallDeltaLeaves.argumentsDelta }),
  }),
});

const MessageError = builder.objectRef<{ code: string; message: string }>('MessageError').implement({
  description: 'Why a generation failed; safe to show to the user.',
  fields: (t) => ({ code: t.exposeString('code'), message: t.exposeString('message') }),
});

export const MessageRef = builder.prismaNode('Message', {
  ...ownedByViewer(READ),
  // Only the columns a query asks for are read (lists of messages are the largest reads), plus
  // the owner, which the type's authorization checks.
  select: { id: true, userId: true },
  fields: (t) => ({
    role: t.expose('role', { type: MessageRole }),
    content: t.exposeString('content', { description: 'While STREAMING, the text is complete only at the end.' }),
    status: t.expose('status', { type: MessageStatus }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    completedAt: t.expose('completedAt', { type: 'DateTime', nullable: true }),
    model: t.exposeString('model', { nullable: true, description: 'The catalog model whose answer ends the reply (a fallback, when the model asked for failed).' }),
    provider: t.exposeString('provider', { nullable: true, description: 'The provider whose text ends the reply.' }),
    attachments: t.relation('attachments', {
      description: 'The images of a user message, in order.',
      query: { orderBy: { position: 'asc' } },
    }),
    attempts: t.relation('attempts', {
      description: 'Every upstream call made for this reply, in order.',
      query: { orderBy: { position: 'asc' } },
    }),
    promptTokens: t.exposeInt('promptTokens'),
    cachedTokens: t.exposeInt('cachedTokens', { description: 'Prompt tokens served from the provider cache, priced at the cached rate.' }),
    cacheWriteTokens: t.exposeInt('cacheWriteTokens', {
      description: "Prompt tokens written to the provider's cache, priced at the cache-write rate.",
    }),
    completionTokens: t.exposeInt('completionTokens'),
    reasoningTokens: t.exposeInt('reasoningTokens', { description: 'Completion tokens spent reasoning.' }),
    totalTokens: t.exposeInt('totalTokens'),
    costMicros: t.expose('costMicros', { type: 'SafeInt', description: 'Cost in micro-dollars (1e-6 USD).' }),
    usageEstimated: t.exposeBoolean('usageEstimated', {
      description: 'True when the token counts come from the local tokenizer because the upstream reported none.',
    }),
    finishReason: t.exposeString('finishReason', { nullable: true, description: 'tool_calls: the reply asks for tools (see toolCalls).' }),
    toolCalls: t.field({
      type: [ToolCall],
      description: 'The tools the reply asks to call, in order (empty for other messages).',
      select: { toolCalls: true },
      resolve: (m) => storedToolCalls(m),
    }),
    toolCallId: t.exposeString('toolCallId', { nullable: true, description: 'On TOOL messages: the call this result answers.' }),
    error: t.field({
      type: MessageError,
      nullable: true,
      select: { errorCode: true, errorMessage: true },
      resolve: (m) => (m.errorCode ? { code: m.errorCode, message: m.errorMessage ?? '' } : null),
    }),
    conversation: t.relation('conversation', { nullable: true, description: 'Null for an API key without READ.' }),
  }),
});

const ReasoningEffort = builder.enumType('ReasoningEffort', { values: ['LOW', 'MEDIUM', 'HIGH'] as const });

const ResponseFormatType = builder.enumType('ResponseFormatType', { values: ['TEXT', 'JSON_OBJECT', 'JSON_SCHEMA'] as const });

const ResponseFormatInput = builder.inputType('ResponseFormatInput', {
  description: 'The shape the reply must have. JSON_SCHEMA needs a name and a JSON Schema (checked before any call).',
  fields: (t) => ({
    type: t.field({ type: ResponseFormatType, required: true }),
    name: t.string({ description: 'For JSON_SCHEMA: 1 to 64 letters, digits, _ or -.' }),
    schema: t.field({ type: 'JSON', description: 'For JSON_SCHEMA: a JSON Schema object, at most 16 KB.' }),
    strict: t.boolean({ description: 'For JSON_SCHEMA: ask the provider to follow the schema exactly, where it can (OpenAI).' }),
  }),
});

const ToolInput = builder.inputType('ToolInput', {
  description: 'A function the model may call.',
  fields: (t) => ({
    name: t.string({ required: true, description: '1 to 64 letters, digits, _ or -; unique among the tools.' }),
    description: t.string({ description: 'What the tool does, for the model.' }),
    parameters: t.field({ type: 'JSON', description: 'The JSON Schema of its arguments, an object schema (none: no arguments).' }),
  }),
});

const SendMessageInput = builder.inputType('SendMessageInput', {
  fields: (t) => ({
    conversationId: t.globalID({ for: ConversationRef, description: 'Omit to start a new conversation.' }),
    content: t.string({ required: true }),
    model: t.string({ description: "Defaults to the conversation's model." }),
    systemPrompt: t.string({ description: "Overrides the conversation's system prompt for this call." }),
    maxTokens: t.int({ description: "Completion budget; clamped to the model's limits." }),
    temperature: t.float({ description: '0 to 2.' }),
    topP: t.float({ description: '0 to 1.' }),
    stop: t.stringList({ description: 'At most 4 sequences, each of 1 to 100 characters, that end the reply.' }),
    seed: t.int({ description: 'Asks for a repeatable reply, where the provider supports it.' }),
    presencePenalty: t.float({ description: '-2 to 2.' }),
    frequencyPenalty: t.float({ description: '-2 to 2.' }),
    reasoningEffort: t.field({ type: ReasoningEffort, description: 'For reasoning models; other models ignore it.' }),
    responseFormat: t.field({ type: ResponseFormatInput }),
    tools: t.field({ type: [ToolInput], description: 'Tools the model may call; each definition at most MAX_TOOL_SCHEMA_BYTES, at most MAX_TOOLS.' }),
    toolChoice: t.string({ description: 'auto (the default), none, required, or the name of one of the tools, which must then be called.' }),
    attachments: t.field({
      type: [AttachmentInput],
      description: 'Images of the message (see MAX_IMAGES_PER_MESSAGE and MAX_IMAGE_BYTES); the model must take images (Model.vision).',
    }),
    stream: t.boolean({
      defaultValue: true,
      description: 'true: return at once and follow messageStream; false: return the complete reply.',
    }),
  }),
});

const ToolResultInput = builder.inputType('ToolResultInput', {
  fields: (t) => ({
    toolCallId: t.string({ required: true, description: 'The id of the call this answers.' }),
    content: t.string({ required: true, description: "The tool's result, as text for the model; at most MAX_TOOL_RESULT_LENGTH characters." }),
  }),
});

const SubmitToolResultsInput = builder.inputType('SubmitToolResultsInput', {
  fields: (t) => ({
    messageId: t.globalID({ required: true, for: MessageRef, description: 'The reply that asked for the tools.' }),
    results: t.field({ type: [ToolResultInput], required: true, description: 'One result for each of its tool calls.' }),
    stream: t.boolean({
      defaultValue: true,
      description: 'true: return at once and follow messageStream; false: return the complete reply.',
    }),
  }),
});

export const SendMessagePayload = builder
  .objectRef<{ conversation: Conversation; userMessage: Message; assistantMessage: Message }>('SendMessagePayload')
  .implement({
    // The conversation and the two messages are what the send made: the key that sent them sees them.
    grantScopes: () => [MUTATION_RESULT],
    fields: (t) => ({
      conversation: t.field({ type: ConversationRef, resolve: (p) => p.conversation }),
      // Whole rows, as written: Prisma fields, so that the plugin answers their columns from them
      // instead of reading them again (Message loads only the columns a query asks for).
      userMessage: t.prismaField({
        type: 'Message',
        description: "The user's message; after submitToolResults, the last TOOL message it stored.",
        resolve: (_query, p) => p.userMessage,
      }),
      assistantMessage: t.prismaField({ type: 'Message', resolve: (_query, p) => p.assistantMessage }),
    }),
  });

builder.mutationFields((t) => ({
  sendMessage: t.field({
    type: SendMessagePayload,
    authScopes: { authenticated: true },
    args: { input: t.arg({ type: SendMessageInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      ctx.services.chat.sendMessage(requireViewer(ctx).id, { ...input, conversationId: input.conversationId?.id }, ctx.viewer?.apiKeyId),
  }),
  submitToolResults: t.field({
    type: SendMessagePayload,
    description:
      "Answers a reply that ended with finishReason tool_calls: stores one TOOL message per result (every call answered exactly once, and only once) and starts the next reply, offered the same tools (toolChoice auto, or none if it was none), streamed like sendMessage's.",
    authScopes: { authenticated: true },
    args: { input: t.arg({ type: SubmitToolResultsInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      ctx.services.chat.submitToolResults(requireViewer(ctx).id, { ...input, messageId: input.messageId.id }, ctx.viewer?.apiKeyId),
  }),
  stopGeneration: t.prismaField({
    type: 'Message',
    authScopes: { authenticated: true },
    args: { messageId: t.arg.globalID({ required: true, for: MessageRef }) },
    resolve: (_query, _root, { messageId }, ctx) => ctx.services.chat.stopGeneration(requireViewer(ctx).id, messageId.id),
  }),
}));

const MessageUsage = builder.objectRef<Message>('MessageUsage').implement({
  ...readGuarded,
  fields: (t) => ({
    promptTokens: t.exposeInt('promptTokens'),
    cachedTokens: t.exposeInt('cachedTokens'),
    cacheWriteTokens: t.exposeInt('cacheWriteTokens'),
    completionTokens: t.exposeInt('completionTokens'),
    reasoningTokens: t.exposeInt('reasoningTokens'),
    totalTokens: t.exposeInt('totalTokens'),
    costMicros: t.expose('costMicros', { type: 'SafeInt' }),
    estimated: t.exposeBoolean('usageEstimated'),
  }),
});

const MessageStreamEvent = builder.objectRef<StreamEvent>('MessageStreamEvent').implement({
  ...readGuarded,
  fields: (t) => ({
    messageId: t.field({ type: 'ID', resolve: streamEventLeaves.messageId }),
    seq: t.int({ resolve: streamEventLeaves.seq, description: 'Position of this event, from 1. Increases by one, or jumps when an event stands for several (see firstSeq).' }),
    firstSeq: t.int({
      description:
        'The first position this event covers: lower than seq when the events of a subscriber that reads slowly were merged into one (their texts joined), otherwise equal to seq.',
      resolve: streamEventLeaves.firstSeq,
    }),
    delta: t.string({ description: 'Text added by this event.', resolve: streamEventLeaves.delta }),
    reset: t.boolean({
      description:
        'True: drop the text and tool calls received so far; this delta and those that follow are the reply anew (its provider failed mid-reply and it was generated again elsewhere).',
      resolve: streamEventLeaves.reset,
    }),
    toolCallDeltas: t.field({
      type: [ToolCallDelta],
      description:
        "Pieces of the tool calls the model writes, in order. They show progress; the final event's message.toolCalls is the whole of them.",
      resolve: streamEventToolCallDeltas,
    }),
    done: t.boolean({ resolve: streamEventLeaves.done }),
    message: t.prismaField({
      type: 'Message',
      nullable: true,
      description: 'On the final event: the persisted message, with its final status and usage.',
      // The same row for every subscriber of this instance: one read per reply, not one per subscriber.
      resolve: (_query, e, _args, ctx) => (e.done ? ctx.services.chat.finalMessage(e.messageId) : null),
    }),
    usage: t.field({
      type: MessageUsage,
      nullable: true,
      description: 'On the final event: the tokens and cost recorded for the reply.',
      resolve: (e, _args, ctx) => (e.done ? ctx.services.chat.finalMessage(e.messageId) : null),
    }),
  }),
});

builder.subscriptionField('messageStream', (t) =>
  t.field({
    type: MessageStreamEvent,
    description: 'The tokens of a reply: first what was already generated, then live, ending with done: true.',
    authScopes: { authenticated: true },
    args: { messageId: t.arg.globalID({ required: true, for: MessageRef }) },
    subscribe: (_root, { messageId }, ctx) => ctx.services.chat.streamMessage(requireViewer(ctx).id, messageId.id),
    resolve: (event) => event,
  }),
);
