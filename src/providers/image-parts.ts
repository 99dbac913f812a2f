import type { ImageBlockParam } from '@anthropic-ai/sdk/resources/messages';
import type { ChatCompletionContentPart, ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import type { ChatTurn, ImagePart } from '../metering/tokens.js';

/**
 * A turn in Chat Completions' terms: one with images becomes content parts, its text first, then
 * each image as an `image_url` (an https URL, or the bytes as a data URL). Others go as they are.
 */
export function openAIMessage(turn: ChatTurn): ChatCompletionMessageParam {
  if (turn.role === 'tool') return { role: 'tool', tool_call_id: turn.toolCallId ?? '', content: turn.content };
  if (!turn.images?.length || turn.role !== 'user') return { role: turn.role, content: turn.content };
  const parts = turn.images.map(
    (image): ChatCompletionContentPart => ({
      type: 'image_url',
      image_url: { url: 'url' in image ? image.url : `data:${image.mimeType};base64,${image.data}` },
    }),
  );
  return { role: 'user', content: [{ type: 'text', text: turn.content }, ...parts] };
}

/** Images in the Messages API's terms: a `url` source, or a `base64` one with its media type. */
export function anthropicImageBlocks(images: ImagePart[]): ImageBlockParam[] {
  return images.map((image) => ({
    type: 'image',
    source: 'url' in image ? { type: 'url', url: image.url } : { type: 'base64', media_type: image.mimeType as 'image/png', data: image.data },
  }));
}
