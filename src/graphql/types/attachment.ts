import { attachmentPath } from '../../chat/attachments.js';
import { builder } from '../builder.js';
import { ownedByViewer } from '../ownership.js';
import { READ } from '../read-scopes.js';

export const AttachmentRef = builder.prismaNode('Attachment', {
  description: "An image of a user's message.",
  ...ownedByViewer(READ),
  // An image is part of its message, and reached only through one the caller may read (or through
  // node(id), whose root needs READ): the owner reads it, a CHAT key too in what its send returns.
  authScopes: (attachment, ctx) => attachment.userId === ctx.viewer?.id,
  // Never the bytes: an upload is served by its url.
  select: { id: true, userId: true },
  fields: (t) => ({
    mimeType: t.exposeString('mimeType', {
      nullable: true,
      description: 'The type its bytes show (image/png, image/jpeg, image/webp, image/gif); null for an https image, which the server never fetches.',
    }),
    bytes: t.exposeInt('bytes', { nullable: true, description: "An upload's size; null for an https image." }),
    url: t.string({
      description:
        'An https image: its URL. An upload: the path, on this server, that serves it to its owner (GET with the same Authorization as the API; an API key needs READ).',
      select: { url: true },
      resolve: (attachment) => attachment.url ?? attachmentPath(attachment.id),
    }),
  }),
});

export const AttachmentInput = builder.inputType('AttachmentInput', {
  description: 'An image of the message: exactly one of imageUrl and file.',
  fields: (t) => ({
    imageUrl: t.string({
      description: 'An https URL (passed to the provider, never fetched by the server), or a data:image/(png|jpeg|webp|gif);base64,… URL (stored like an upload).',
    }),
    file: t.field({ type: 'File', description: 'A PNG, JPEG, WEBP or GIF sent as a GraphQL multipart upload.' }),
  }),
});
