import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';

/** An image of a user turn: a URL the provider fetches, or bytes sent inline (base64). */
export type ImagePart = { url: string } | { mimeType: string; data: string };

export interface ChatTurn {
  role: 'system' | 'user' | 'assistant';
  content: string;
  /** On user turns: the images sent with the text. */
  images?: ImagePart[];
}

// OpenAI's chat format adds a few tokens per message and per reply; counting them keeps the
// estimate at or above what the upstream reports.
const TOKENS_PER_MESSAGE = 4;
const TOKENS_PER_REPLY = 3;

/**
 * Local estimate with the o200k tokenizer (GPT-4o family). Used to reserve quota before a call
 * and as the recorded usage only when the upstream reports none (marked as estimated). An image
 * counts `imageTokens`, the most its model bills for one (its pixels are not looked at).
 */
export function estimatePromptTokens(messages: ChatTurn[], imageTokens = 0): number {
  return messages.reduce(
    (sum, m) => sum + TOKENS_PER_MESSAGE + countTokens(m.content) + (m.images?.length ?? 0) * imageTokens,
    TOKENS_PER_REPLY,
  );
}

export function estimateCompletionTokens(text: string): number {
  return text.length === 0 ? 0 : countTokens(text);
}
