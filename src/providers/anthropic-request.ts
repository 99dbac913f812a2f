import type { MessageCreateParamsStreaming, MessageParam } from '@anthropic-ai/sdk/resources/messages';
import type { ImagePart } from '../metering/tokens.js';
import { anthropicImageBlocks } from './image-parts.js';
import type { ChatRequest } from './provider.js';

/**
 * Sent as the first turn when a conversation does not begin with the user's (it opens with an
 * assistant's greeting, or has only system turns): the Messages API wants a user turn first.
 */
export const CONVERSATION_START = '(conversation start)';

/** A request in the Messages API's terms. */
export interface MessagesRequest {
  params: MessageCreateParamsStreaming;
  /**
   * Whitespace cut from the end of the prefill (see `messagesRequest`): the caller holds it
   * already, so the reply must not repeat it.
   */
  prefillWhitespace: string;
}

/**
 * Translates a request: system turns go to the `system` parameter; user and assistant turns must
 * alternate, beginning with the user's, so consecutive turns of one role are joined; blank turns,
 * which the API refuses, are left out. A user turn's images go before its text, as Anthropic advises.
 *
 * The prefill is sent as a trailing assistant turn that the model continues. The API refuses a
 * final assistant turn ending in whitespace, so the prefill's trailing whitespace is cut off, and
 * the model, continuing "Hello", usually begins by restoring it (" world"). The caller already
 * holds "Hello ", so `prefillWhitespace` tells the reply to drop that space again: the caller then
 * gets "world", and "Hello " + "world" reads as the model wrote it.
 */
export function messagesRequest(request: ChatRequest): MessagesRequest {
  const system = request.messages
    .filter((turn) => turn.role === 'system' && !isBlank(turn.content))
    .map((turn) => turn.content)
    .join('\n\n');
  const turns: Array<{ role: 'user' | 'assistant'; content: string; images: ImagePart[] }> = [];
  const append = (role: 'user' | 'assistant', content: string, images: ImagePart[] = []) => {
    if (isBlank(content) && images.length === 0) return;
    const last = turns.at(-1);
    if (last?.role === role) {
      last.content = [last.content, content].filter((text) => !isBlank(text)).join('\n\n');
      last.images.push(...images);
    } else turns.push({ role, content, images: [...images] });
  };
  for (const turn of request.messages) {
    if (turn.role !== 'system') append(turn.role, turn.content, turn.images);
  }
  const prefill = request.prefill ?? '';
  const kept = prefill.trimEnd();
  append('assistant', kept);
  if (turns[0]?.role !== 'user') turns.unshift({ role: 'user', content: CONVERSATION_START, images: [] });
  const last = turns.at(-1);
  // A conversation that itself ends with an assistant turn is continued the same way.
  if (last?.role === 'assistant') last.content = last.content.trimEnd();
  return {
    params: {
      model: request.model,
      max_tokens: request.maxTokens,
      messages: turns.map(messageParam),
      ...(system ? { system } : {}),
      ...anthropicSampling(request),
      ...anthropicOutputFormat(request),
      stream: true,
    },
    prefillWhitespace: prefill.slice(kept.length),
  };
}

/**
 * Drops from the start of the reply the whitespace cut from the prefill, as far as the reply
 * repeats it, across as many deltas as that takes. Other whitespace, or none, is passed on as is.
 */
export function afterPrefill(prefillWhitespace: string): (delta: string) => string {
  let pending = prefillWhitespace;
  return (delta) => {
    let repeated = 0;
    while (pending && repeated < delta.length && delta[repeated] === pending[0]) {
      pending = pending.slice(1);
      repeated += 1;
    }
    if (repeated < delta.length) pending = '';
    return delta.slice(repeated);
  };
}

const isBlank = (text: string) => text.trim() === '';

/** A turn as the API takes it: plain text, or its images then its text (if any) as blocks. */
function messageParam({ role, content, images }: { role: 'user' | 'assistant'; content: string; images: ImagePart[] }): MessageParam {
  if (images.length === 0) return { role, content };
  return { role, content: [...anthropicImageBlocks(images), ...(isBlank(content) ? [] : [{ type: 'text' as const, text: content }])] };
}

/**
 * The sampling Anthropic's Messages API takes: temperature, `top_p` (not both: newer models refuse
 * the pair, and temperature is kept) and `stop_sequences`. It has no seed, no penalties and no
 * reasoning effort: those are left out.
 */
function anthropicSampling(request: ChatRequest): { temperature?: number; top_p?: number; stop_sequences?: string[] } {
  const { topP, stop } = request.sampling ?? {};
  return {
    ...(request.temperature === undefined ? {} : { temperature: request.temperature }),
    ...(topP === undefined || request.temperature !== undefined ? {} : { top_p: topP }),
    ...(stop?.length ? { stop_sequences: stop } : {}),
  };
}

/**
 * Structured output on Anthropic: `output_config.format` with the JSON Schema; a reply asked to
 * be any JSON object gets the schema of an object.
 */
function anthropicOutputFormat(request: ChatRequest): { output_config?: { format: { type: 'json_schema'; schema: Record<string, unknown> } } } {
  const format = request.responseFormat;
  if (!format || format.type === 'text') return {};
  const schema = format.type === 'json_schema' ? format.schema : { type: 'object' };
  return { output_config: { format: { type: 'json_schema', schema } } };
}
