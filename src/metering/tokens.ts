import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';

export interface ChatTurn {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

// OpenAI's chat format adds a few tokens per message and per reply; counting them keeps the
// estimate at or above what the upstream reports.
const TOKENS_PER_MESSAGE = 4;
const TOKENS_PER_REPLY = 3;

/**
 * Local estimate with the o200k tokenizer (GPT-4o family). Used to reserve quota before a call
 * and as the recorded usage only when the upstream reports none (marked as estimated).
 */
export function estimatePromptTokens(messages: ChatTurn[]): number {
  return messages.reduce((sum, m) => sum + TOKENS_PER_MESSAGE + countTokens(m.content), TOKENS_PER_REPLY);
}

export function estimateCompletionTokens(text: string): number {
  return text.length === 0 ? 0 : countTokens(text);
}
