import type { Sampling, ToolDefinition } from '../providers/provider.js';
import { badInput } from '../errors.js';
import type { ResponseFormatInput } from './response-format.js';
import type { Message } from '../generated/prisma/client.js';
import type { ModelInfo } from '../model-catalog.js';
import { estimatePromptTokens, estimateToolTokens, type ChatTurn, type ImagePart } from '../metering/tokens.js';
import { chatTurnOf, withAnsweredToolCalls } from './tools.js';

export const MAX_CONTENT_LENGTH = 100_000;

export interface PromptPlan {
  messages: ChatTurn[];
  promptEstimate: number;
  maxTokens: number;
}

/**
 * Builds what the upstream receives: system prompt, as much recent history as fits, then the
 * new message (or the new turns: a reply's tool calls with their results). Tool definitions are
 * sent with every request and count like the prompt. The completion budget is clamped to the
 * model's limits; a prompt that cannot fit at all is bad input.
 */
export function planPrompt(options: {
  model: ModelInfo;
  systemPrompt: string | null;
  history: Array<Pick<Message, 'role' | 'content' | 'toolCalls' | 'toolCallId'> & { images?: ImagePart[] }>;
  content: string;
  images?: ImagePart[];
  /** Tokens an image takes of the context window (IMAGE_TOKEN_ESTIMATE); the model's imageTokens are reserved. */
  imageTokens?: number;
  requestedMaxTokens: number;
  /** What the send adds instead of the user's content. */
  newTurns?: ChatTurn[];
  tools?: ToolDefinition[];
}): PromptPlan {
  const { model } = options;
  const contextImageTokens = options.imageTokens ?? 0;
  const maxTokens = Math.min(options.requestedMaxTokens, model.maxOutputTokens);
  const head: ChatTurn[] = options.systemPrompt ? [{ role: 'system', content: options.systemPrompt }] : [];
  const tail: ChatTurn[] = options.newTurns ?? [{ role: 'user', content: options.content, ...withImages(options.images) }];
  const toolTokens = estimateToolTokens(options.tools);
  const required = estimatePromptTokens([...head, ...tail], contextImageTokens) + toolTokens;
  if (required + 1 > model.contextWindow) {
    throw badInput(
      `Prompt is too long for ${model.id}: about ${required} tokens, the context window is ${model.contextWindow}`,
      options.newTurns ? 'results' : 'content',
    );
  }
  // Newest history first, while it fits next to the completion budget.
  const budget = model.contextWindow - Math.min(maxTokens, model.contextWindow - required);
  const kept: ChatTurn[] = [];
  let used = required;
  for (const turn of [...options.history].reverse()) {
    const chatTurn: ChatTurn = { ...chatTurnOf(turn), ...withImages(turn.images) };
    const cost = estimatePromptTokens([chatTurn], contextImageTokens) - estimatePromptTokens([]);
    if (used + cost > budget) break;
    kept.unshift(chatTurn);
    used += cost;
  }
  // Results whose calls did not fit are left out with them: a provider refuses a result without its call.
  while (kept[0]?.role === 'tool') kept.shift();
  const messages = withAnsweredToolCalls([...head, ...kept, ...tail]);
  const contextEstimate = estimatePromptTokens(messages, contextImageTokens) + toolTokens;
  // Reserved: images as the model may bill them, which can be more than they take of the window.
  const promptEstimate = estimatePromptTokens(messages, model.imageTokens ?? contextImageTokens) + toolTokens;
  return { messages, promptEstimate, maxTokens: Math.max(1, Math.min(maxTokens, model.contextWindow - contextEstimate)) };
}

const withImages = (images: ImagePart[] | undefined) => (images?.length ? { images } : {});

export function checkContent(content: string): string {
  if (content.trim().length === 0) throw badInput('Message must not be empty', 'content');
  if (content.length > MAX_CONTENT_LENGTH) throw badInput(`Message must be at most ${MAX_CONTENT_LENGTH} characters`, 'content');
  return content;
}

/** At most this many stop sequences (OpenAI's limit), each at most this long. */
export const MAX_STOP_SEQUENCES = 4;
export const MAX_STOP_LENGTH = 100;

/** How a reply is generated, as a client asks for it. */
export interface GenerationOptions {
  maxTokens?: number | null;
  temperature?: number | null;
  topP?: number | null;
  stop?: string[] | null;
  seed?: number | null;
  presencePenalty?: number | null;
  frequencyPenalty?: number | null;
  reasoningEffort?: 'LOW' | 'MEDIUM' | 'HIGH' | null;
}

const within = (value: number | null | undefined, min: number, max: number, field: string) => {
  if (value != null && !(value >= min && value <= max)) throw badInput(`${field} must be between ${min} and ${max}`, field);
};

/** Checks the generation options against their ranges; the sampling to pass on, if any was asked for. */
export function checkGenerationOptions(input: GenerationOptions): Sampling | undefined {
  if (input.maxTokens != null && input.maxTokens < 1) throw badInput('maxTokens must be at least 1', 'maxTokens');
  within(input.temperature, 0, 2, 'temperature');
  within(input.topP, 0, 1, 'topP');
  within(input.presencePenalty, -2, 2, 'presencePenalty');
  within(input.frequencyPenalty, -2, 2, 'frequencyPenalty');
  if (input.stop && input.stop.length > MAX_STOP_SEQUENCES) throw badInput(`At most ${MAX_STOP_SEQUENCES} stop sequences`, 'stop');
  if (input.stop?.some((s) => s.length === 0 || s.length > MAX_STOP_LENGTH)) {
    throw badInput(`A stop sequence must have 1 to ${MAX_STOP_LENGTH} characters`, 'stop');
  }
  const sampling: Sampling = {
    ...(input.topP != null ? { topP: input.topP } : {}),
    ...(input.stop?.length ? { stop: input.stop } : {}),
    ...(input.seed != null ? { seed: input.seed } : {}),
    ...(input.presencePenalty != null ? { presencePenalty: input.presencePenalty } : {}),
    ...(input.frequencyPenalty != null ? { frequencyPenalty: input.frequencyPenalty } : {}),
    ...(input.reasoningEffort ? { reasoningEffort: input.reasoningEffort.toLowerCase() as Sampling['reasoningEffort'] } : {}),
  };
  return Object.keys(sampling).length > 0 ? sampling : undefined;
}

/** How a reply was asked for, as it is stored with it: the generation options and the response format. */
export type AskedOptions = GenerationOptions & { responseFormat?: ResponseFormatInput | null };

const ASKED_OPTION_NAMES = [
  'maxTokens',
  'temperature',
  'topP',
  'stop',
  'seed',
  'presencePenalty',
  'frequencyPenalty',
  'reasoningEffort',
  'responseFormat',
] as const satisfies ReadonlyArray<keyof AskedOptions>;

/**
 * The options a client gave for a reply (already checked), to store with it, so that regenerating
 * the reply or answering its tool calls asks the same way; undefined when none was given.
 */
export function askedOptionsToStore(input: AskedOptions): Record<string, unknown> | undefined {
  const given = ASKED_OPTION_NAMES.flatMap((name) => (input[name] == null ? [] : [[name, input[name]] as const]));
  return given.length > 0 ? Object.fromEntries(given) : undefined;
}

/** The options a reply was asked with (none for replies stored before they were kept). */
export function storedAskedOptions(message: { generationOptions: unknown }): AskedOptions {
  const stored = message.generationOptions;
  // Written by askedOptionsToStore; checked again, like a client's, when the reply is asked anew.
  return stored && typeof stored === 'object' && !Array.isArray(stored) ? (stored as AskedOptions) : {};
}
