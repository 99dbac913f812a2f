import { v7 as uuidv7 } from 'uuid';
import type { ImageLimits } from '../config.js';
import type { PrismaClient } from '../db/client.js';
import { badInput } from '../errors.js';
import type { Message } from '../generated/prisma/client.js';
import { encodeGlobalId } from '../global-id.js';
import type { ImagePart } from '../metering/tokens.js';
import { IMAGE_TYPES, sniffImageType } from './image-types.js';
import type { StoredImageRef } from './message-tree.js';

/** An uploaded file as Yoga hands it over (a multipart request's `File`). */
export interface Upload {
  readonly size: number;
  arrayBuffer(): Promise<ArrayBuffer>;
}

/** One image of sendMessage's `attachments`: exactly one of the two. */
export interface AttachmentInput {
  imageUrl?: string | null;
  file?: Upload | null;
}

/** An image checked and ready to store: an https URL, or bytes of a known image type. */
export type NewAttachment = { id: string; url: string } | { id: string; mimeType: string; data: Buffer };

/** Where an upload is served back to its owner (src/http/attachments.ts); the id is its global id. */
export const ATTACHMENT_PATH_PREFIX = '/attachments/';
export const attachmentPath = (id: string) => `${ATTACHMENT_PATH_PREFIX}${encodeURIComponent(encodeGlobalId('Attachment', id))}`;

const DATA_URL = /^data:(image\/[a-z]+);base64,/i;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Checks a message's images before anything is stored or sent: how many, each an https URL (the
 * provider fetches it; never this server), a `data:image/…;base64,` URL or an upload, whose bytes
 * must be a PNG, JPEG, WEBP or GIF (a data URL's declared type must match them) within the size
 * limit. Any other scheme is bad input.
 */
export async function checkAttachments(inputs: readonly AttachmentInput[], limits: ImageLimits): Promise<NewAttachment[]> {
  if (inputs.length > limits.maxPerMessage) {
    throw badInput(`At most ${limits.maxPerMessage} images per message`, 'attachments');
  }
  const checked: NewAttachment[] = [];
  for (const [index, input] of inputs.entries()) {
    const field = `attachments.${index}`;
    if ((input.imageUrl == null) === (input.file == null)) {
      throw badInput('An attachment needs exactly one of imageUrl and file', field);
    }
    if (input.file) checked.push({ id: uuidv7(), ...(await readUpload(input.file, limits, `${field}.file`)) });
    else checked.push({ id: uuidv7(), ...readImageUrl(input.imageUrl!, limits, `${field}.imageUrl`) });
  }
  return checked;
}

async function readUpload(file: Upload, limits: ImageLimits, field: string): Promise<{ mimeType: string; data: Buffer }> {
  if (file.size > limits.maxBytes) throw tooLarge(limits, field);
  return checkedImage(Buffer.from(await file.arrayBuffer()), undefined, field);
}

function readImageUrl(url: string, limits: ImageLimits, field: string): { url: string } | { mimeType: string; data: Buffer } {
  const dataUrl = DATA_URL.exec(url);
  if (dataUrl) {
    const encoded = url.slice(dataUrl[0].length);
    // Refused before decoding: base64 takes 4 characters per 3 bytes.
    if (encoded.length > Math.ceil(limits.maxBytes / 3) * 4) throw tooLarge(limits, field);
    if (!BASE64.test(encoded)) throw badInput('The data URL is not valid base64', field);
    const declared = dataUrl[1]!.toLowerCase();
    if (!(IMAGE_TYPES as readonly string[]).includes(declared)) throw unsupported(field);
    return checkedImage(Buffer.from(encoded, 'base64'), declared, field);
  }
  if (url.length > limits.maxUrlLength) throw badInput(`An image URL must be at most ${limits.maxUrlLength} characters`, field);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw badInput('imageUrl must be an https URL or a data:image URL', field);
  }
  if (parsed.protocol !== 'https:') throw badInput('imageUrl must be an https URL or a data:image URL', field);
  // The provider would send them on; a client that put them there made a mistake.
  if (parsed.username || parsed.password) throw badInput('imageUrl must not carry credentials', field);
  return { url: parsed.href };
}

function checkedImage(data: Buffer, declared: string | undefined, field: string): { mimeType: string; data: Buffer } {
  const mimeType = sniffImageType(data);
  if (!mimeType) throw unsupported(field);
  if (declared && declared !== mimeType) throw badInput(`The data URL says ${declared} but holds ${mimeType}`, field);
  return { mimeType, data };
}

const tooLarge = (limits: ImageLimits, field: string) => badInput(`An image must be at most ${limits.maxBytes} bytes`, field);
const unsupported = (field: string) => badInput('Only PNG, JPEG, WEBP and GIF images are accepted', field);

/** How chat_send_message takes an attachment (prisma/sql/chat_send_message.sql): bytes in base64. */
export function attachmentParams(attachment: NewAttachment): Record<string, unknown> {
  if ('url' in attachment) return { id: attachment.id, url: attachment.url };
  return { id: attachment.id, mimeType: attachment.mimeType, bytes: attachment.data.length, data: attachment.data.toString('base64') };
}

/** How a provider receives a stored image: its URL, or its bytes inline. */
export function imagePart(attachment: NewAttachment): ImagePart {
  return 'url' in attachment ? { url: attachment.url } : { mimeType: attachment.mimeType, data: attachment.data.toString('base64') };
}

/** A stored turn, read with its image references. */
type StoredTurn = Pick<Message, 'id' | 'role' | 'content'> & { attachments: StoredImageRef[] };

/**
 * Stored turns with their images, as a provider is sent them again: the newest `budget` images
 * (earlier ones are left out, their turns keep their text). The bytes of uploads are read for
 * those only.
 */
export async function withStoredImages<Turn extends StoredTurn>(
  prisma: PrismaClient,
  turns: Turn[],
  budget: number,
): Promise<Array<Turn & { images?: ImagePart[] }>> {
  const stored = budget > 0 ? turns.flatMap((turn) => (turn.role === 'USER' ? turn.attachments : [])) : [];
  // Message ids are time-ordered (v7), as the turns are: the last ones are the newest.
  const kept = stored.slice(-budget);
  const uploads = kept.filter((a) => a.url === null).map((a) => a.id);
  const rows = uploads.length ? await prisma.attachment.findMany({ where: { id: { in: uploads } }, select: { id: true, data: true } }) : [];
  const bytes = new Map(rows.map((row) => [row.id, row.data]));
  return turns.map((turn) => {
    const images = kept.flatMap((a): ImagePart[] => {
      if (a.messageId !== turn.id) return [];
      if (a.url !== null) return [{ url: a.url }];
      const data = bytes.get(a.id);
      return data && a.mimeType ? [{ mimeType: a.mimeType, data: Buffer.from(data).toString('base64') }] : [];
    });
    return images.length > 0 ? { ...turn, images } : turn;
  });
}

/** An upload's bytes, for its owner only: undefined for anyone else, an https image or an unknown id. */
export async function findOwnUpload(prisma: PrismaClient, userId: string, id: string): Promise<{ mimeType: string; data: Uint8Array } | undefined> {
  const row = await prisma.attachment.findFirst({ where: { id, userId }, select: { mimeType: true, data: true } });
  return row?.data && row.mimeType ? { mimeType: row.mimeType, data: row.data } : undefined;
}
