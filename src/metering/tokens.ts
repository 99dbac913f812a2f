import { createRequire } from 'node:module';

/** An image of a user turn: a URL the provider fetches, or bytes sent inline (base64). */
export type ImagePart = { url: string } | { mimeType: string; data: string };

export interface ChatTurn {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string;
  /** On user turns: the images sent with the text. */
  images?: ImagePart[];
  /** On assistant turns: the tools the model asked to call. */
  toolCalls?: ToolCall[];
  /** On tool turns: the call whose result this is. */
  toolCallId?: string;
}

/** A call the model asked for; `arguments` is the JSON text it wrote. */
export interface ToolCall {
  id: string;
  name: string;
  arguments: string;
}

// OpenAI's chat format adds a few tokens per message and per reply; counting them keeps the
// estimate at or above what the upstream reports.
const TOKENS_PER_MESSAGE = 4;
const TOKENS_PER_REPLY = 3;

type CountTokens = (text: string) => number;
let o200k: CountTokens | undefined;

/**
 * The o200k tokenizer, loaded on first use rather than at start-up: its ranks take about 50 MB
 * and 150-200 ms to load, which a process that never counts tokens (the admin
 * command, a server that has not sent a message yet) need not pay. Loaded synchronously, so that
 * counting stays synchronous for its callers.
 */
function countTokens(text: string): number {
  o200k ??= (createRequire(import.meta.url)('gpt-tokenizer/encoding/o200k_base') as { countTokens: CountTokens }).countTokens;
  return o200k(text);
}

/**
 * Local estimate with the o200k tokenizer (GPT-4o family). Used to reserve quota before a call
 * and as the recorded usage only when the upstream reports none (marked as estimated). An image
 * counts `imageTokens`, the most its model bills for one (its pixels are not looked at).
 */
export function estimatePromptTokens(messages: ChatTurn[], imageTokens = 0): number {
  return messages.reduce(
    (sum, m) => sum + TOKENS_PER_MESSAGE + countTokens(m.content) + toolTurnTokens(m) + (m.images?.length ?? 0) * imageTokens,
    TOKENS_PER_REPLY,
  );
}

/** The calls an assistant turn made, and the id a tool turn answers: sent to the provider like text. */
function toolTurnTokens(turn: ChatTurn): number {
  const calls = turn.toolCalls?.reduce((sum, call) => sum + countTokens(call.id) + countTokens(call.name) + countTokens(call.arguments), 0) ?? 0;
  return calls + (turn.toolCallId ? countTokens(turn.toolCallId) : 0);
}

/** Tool definitions are sent with every request that offers them (as JSON, roughly). */
export function estimateToolTokens(tools: ReadonlyArray<object> | undefined): number {
  return tools?.length ? countTokens(JSON.stringify(tools)) : 0;
}

export function estimateCompletionTokens(text: string): number {
  return text.length === 0 ? 0 : countTokens(text);
}
