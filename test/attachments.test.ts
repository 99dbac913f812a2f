import { request as httpRequest } from 'node:http';
import { print } from 'graphql';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeGlobalId } from '../src/global-id.js';
import { messagesRequest } from '../src/providers/anthropic-request.js';
import { registerUser } from './helpers/accounts.js';
import { errorCodes, expectData, startTestApp, type TestApp } from './helpers/app.js';
import { CreateScopedApiKeyDocument } from './helpers/api-key-documents.js';
import type { ResultOf } from '@graphql-typed-document-node/core';
import { graphql } from './generated/gql.js';
import { MockUpstream } from './helpers/upstream.js';
import { waitFor } from './helpers/wait.js';

const SendWithImagesDocument = graphql(`
  mutation SendWithImages($input: SendMessageInput!) {
    sendMessage(input: $input) {
      conversation {
        id
      }
      userMessage {
        id
        attachments {
          id
          mimeType
          bytes
          url
        }
      }
      assistantMessage {
        id
        status
      }
    }
  }
`);

const MessageAttachmentsDocument = graphql(`
  query MessageAttachments($id: ID!) {
    node(id: $id) {
      ... on Message {
        attachments {
          id
          mimeType
          bytes
          url
        }
      }
    }
  }
`);

const RegenerateDocument = graphql(`
  mutation RegenerateWithImages($id: ID!) {
    regenerateMessage(input: { messageId: $id, stream: false }) {
      assistantMessage {
        id
        status
      }
    }
  }
`);

const VisionModelsDocument = graphql(`
  query VisionModels {
    models {
      id
      vision
    }
  }
`);

// A 1×1 PNG, and a GIF header: real image bytes, as their magic numbers say.
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64');
const GIF = Buffer.from('R0lGODlhAQABAAAAACw=', 'base64');
const dataUrl = (type: string, bytes: Buffer) => `data:${type};base64,${bytes.toString('base64')}`;

const price = { promptMicrosPerMillion: 150_000, completionMicrosPerMillion: 600_000 };

let upstream: MockUpstream;
let t: TestApp;
let url: URL;
/** The same upstream behind tight image limits. */
let tight: TestApp;
let tightUrl: URL;
beforeAll(async () => {
  upstream = await MockUpstream.start();
  const env = {
    PROVIDERS_JSON: JSON.stringify([
      { id: 'openai', kind: 'openai-compatible', baseUrl: `${upstream.mock.url}/v1`, apiKey: 'sk-test-upstream-key' },
      // Refuses every connection: a model served there fails at once, and its fallbacks are tried.
      { id: 'gone', kind: 'openai-compatible', baseUrl: 'http://127.0.0.1:9/v1', apiKey: 'sk-gone' },
    ]),
    MODELS_JSON: JSON.stringify([
      { id: 'gpt-4o-mini', contextWindow: 128_000, maxOutputTokens: 16_384, vision: true, imageTokens: 3000, ...price },
      { id: 'text-only', contextWindow: 128_000, maxOutputTokens: 16_384, ...price },
      { id: 'narrow-eyes', contextWindow: 2_000, maxOutputTokens: 100, vision: true, ...price },
      { id: 'failing-eyes', contextWindow: 128_000, maxOutputTokens: 100, vision: true, deployments: [{ provider: 'gone', model: 'x' }], fallbacks: ['text-only'], ...price },
    ]),
    UPSTREAM_MAX_ATTEMPTS: '1',
  };
  t = await startTestApp(env);
  url = await t.app.start(0);
  tight = await startTestApp({ ...env, MAX_IMAGE_BYTES: '100', MAX_IMAGES_PER_MESSAGE: '2', MAX_UPLOAD_BYTES: '2048', MAX_IMAGE_URL_LENGTH: '60' });
  tightUrl = await tight.app.start(0);
});

type SendInput = { content: string; model?: string; conversationId?: string; attachments?: Array<{ imageUrl?: string }>; stream?: boolean };

async function send(token: string, input: SendInput, app = t) {
  return app.execute(SendWithImagesDocument, { input: { stream: false, ...input } }, { token });
}

type UploadFile = { bytes: Buffer; name: string; type?: string };
type Sent = ResultOf<typeof SendWithImagesDocument>;

/**
 * A sendMessage as a GraphQL multipart request over HTTP: the spec's `operations` (each file a
 * null in the variables), `map` (which file goes where) and the files.
 */
async function sendUploads(token: string, content: string, attachments: Array<{ imageUrl?: string; file?: UploadFile }>, target = url) {
  const form = new FormData();
  const variables = { input: { content, stream: false, attachments: attachments.map(({ imageUrl, file }) => ({ imageUrl, ...(file ? { file: null } : {}) })) } };
  const files = attachments.flatMap(({ file }, index) => (file ? [{ file, path: `variables.input.attachments.${index}.file` }] : []));
  form.set('operations', JSON.stringify({ query: print(SendWithImagesDocument), variables }));
  form.set('map', JSON.stringify(Object.fromEntries(files.map(({ path }, i) => [String(i), [path]]))));
  files.forEach(({ file }, i) => form.set(String(i), new Blob([new Uint8Array(file.bytes)], { type: file.type ?? 'image/png' }), file.name));
  // Yoga's CSRF prevention asks a multipart request for a header that a browser's form cannot send.
  const response = await fetch(target, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'x-graphql-yoga-csrf': '1' }, body: form });
  const body = (await response.json()) as { data?: Sent; errors?: Array<{ message: string; extensions?: { code?: string } }> };
  return { status: response.status, data: body.data, codes: body.errors?.map((e) => e.extensions?.code) };
}

/** What the provider received as the last user turn's content for a prompt. */
async function sentContent(prompt: string, index = 0) {
  const requests = await waitFor('the upstream request', () => (upstream.requestsFor(prompt).length > index ? upstream.requestsFor(prompt) : undefined));
  const messages = requests[index]!.messages as Array<{ role: string; content: unknown }>;
  return messages.filter((m) => m.role === 'user').map((m) => m.content);
}

const fetchAttachment = (path: string, token?: string) =>
  fetch(new URL(path, url), { headers: token ? { authorization: `Bearer ${token}` } : {} });

const attachmentRows = async (userEmail: string) => {
  const user = await t.app.db.prisma.user.findUniqueOrThrow({ where: { email: userEmail } });
  return t.app.db.prisma.attachment.count({ where: { userId: user.id } });
};

describe('image inputs', () => {
  it('passes an https image to an OpenAI-compatible provider as an image_url part, never fetching it', async () => {
    const user = await registerUser(t);
    const prompt = upstream.prompt({ content: 'A cat.' });
    const imageUrl = 'https://images.example.com/cat.png?size=large';
    const data = expectData(await send(user.accessToken, { content: prompt, attachments: [{ imageUrl }] }));
    expect(data.sendMessage.assistantMessage.status).toBe('COMPLETE');
    expect(data.sendMessage.userMessage.attachments).toEqual([{ id: expect.any(String), mimeType: null, bytes: null, url: imageUrl }]);
    expect(await sentContent(prompt)).toEqual([[{ type: 'text', text: prompt }, { type: 'image_url', image_url: { url: imageUrl } }]]);

    const read = expectData(await t.execute(MessageAttachmentsDocument, { id: data.sendMessage.userMessage.id }, { token: user.accessToken }));
    expect(read.node).toEqual({ attachments: data.sendMessage.userMessage.attachments });
  });

  it('stores a multipart upload, serves it back to its owner only, and sends it to the provider as base64, again with later turns', async () => {
    const owner = await registerUser(t);
    const other = await registerUser(t);
    const prompt = upstream.prompt({ content: 'A pixel.' });
    const result = await sendUploads(owner.accessToken, prompt, [{ file: { bytes: PNG, name: 'pixel.png' } }]);
    expect(result.codes).toBeUndefined();
    const [attachment] = result.data!.sendMessage.userMessage.attachments;
    expect(attachment).toEqual({ id: expect.any(String), mimeType: 'image/png', bytes: PNG.length, url: expect.stringMatching(/^\/attachments\//) });
    const inline = { type: 'image_url', image_url: { url: dataUrl('image/png', PNG) } };
    expect(await sentContent(prompt)).toEqual([[{ type: 'text', text: prompt }, inline]]);

    const served = await fetchAttachment(attachment!.url, owner.accessToken);
    expect(served.status).toBe(200);
    expect(Buffer.from(await served.arrayBuffer())).toEqual(PNG);
    expect(served.headers.get('content-type')).toBe('image/png');
    expect(served.headers.get('x-content-type-options')).toBe('nosniff');
    expect(served.headers.get('content-security-policy')).toBe("default-src 'none'; sandbox");
    expect(served.headers.get('content-disposition')).toMatch(/^attachment/);
    expect((await fetchAttachment(attachment!.url, other.accessToken)).status).toBe(404);
    expect((await fetchAttachment(attachment!.url)).status).toBe(401);
    expect((await fetchAttachment('/attachments/not-an-id', owner.accessToken)).status).toBe(404);

    // The next turn of the conversation sends the earlier image again.
    const next = upstream.prompt({ content: 'Still a pixel.' });
    const second = expectData(await send(owner.accessToken, { content: next, conversationId: result.data!.sendMessage.conversation.id }));
    expect(await sentContent(next)).toEqual([[{ type: 'text', text: prompt }, inline], next]);

    // A regenerated reply to the first question sends its image again.
    expectData(await t.execute(RegenerateDocument, { id: result.data!.sendMessage.assistantMessage.id }, { token: owner.accessToken }));
    expect(await sentContent(prompt, 1)).toEqual([[{ type: 'text', text: prompt }, inline]]);

    // So does a regenerated later reply: the image of an earlier turn of its branch.
    expectData(await t.execute(RegenerateDocument, { id: second.sendMessage.assistantMessage.id }, { token: owner.accessToken }));
    expect(await sentContent(next, 1)).toEqual([[{ type: 'text', text: prompt }, inline], next]);
  });

  it('stores a data: URL like an upload', async () => {
    const user = await registerUser(t);
    const prompt = upstream.prompt({ content: 'A gif.' });
    const data = expectData(await send(user.accessToken, { content: prompt, attachments: [{ imageUrl: dataUrl('image/gif', GIF) }] }));
    const [attachment] = data.sendMessage.userMessage.attachments;
    expect(attachment).toMatchObject({ mimeType: 'image/gif', bytes: GIF.length, url: expect.stringMatching(/^\/attachments\//) });
    expect(await sentContent(prompt)).toEqual([[{ type: 'text', text: prompt }, { type: 'image_url', image_url: { url: dataUrl('image/gif', GIF) } }]]);
    expect(Buffer.from(await (await fetchAttachment(attachment!.url, user.accessToken)).arrayBuffer())).toEqual(GIF);
  });

  it('refuses bytes that are not an image whatever their name, and a data URL whose type is not what it holds, storing nothing', async () => {
    const user = await registerUser(t);
    const prompt = upstream.prompt({ content: 'never' });
    const text = await sendUploads(user.accessToken, prompt, [{ file: { bytes: Buffer.from('just some text, not a picture'), name: 'cat.png' } }]);
    expect(text.codes).toEqual(['BAD_USER_INPUT']);
    for (const imageUrl of [dataUrl('image/jpeg', PNG), dataUrl('image/svg+xml', Buffer.from('<svg/>')), 'data:image/png;base64,@@@']) {
      expect(errorCodes(await send(user.accessToken, { content: prompt, attachments: [{ imageUrl }] })), imageUrl).toEqual(['BAD_USER_INPUT']);
    }
    expect(upstream.requestsFor(prompt)).toHaveLength(0);
    expect(await attachmentRows(user.email)).toBe(0);
  });

  it('refuses any scheme but https (and data:image), and an attachment with neither or both of imageUrl and file', async () => {
    const user = await registerUser(t);
    const prompt = upstream.prompt({ content: 'never' });
    const refused = ['http://example.com/a.png', 'file:///etc/passwd', 'ftp://example.com/a.png', 'javascript:alert(1)', '/a.png', 'a.png', 'https://user:secret@example.com/a.png'];
    for (const imageUrl of refused) {
      expect(errorCodes(await send(user.accessToken, { content: prompt, attachments: [{ imageUrl }] })), imageUrl).toEqual(['BAD_USER_INPUT']);
    }
    expect(errorCodes(await send(user.accessToken, { content: prompt, attachments: [{}] }))).toEqual(['BAD_USER_INPUT']);
    const both = await sendUploads(user.accessToken, prompt, [{ imageUrl: 'https://example.com/a.png', file: { bytes: PNG, name: 'a.png' } }]);
    expect(both.codes).toEqual(['BAD_USER_INPUT']);
    expect(upstream.requestsFor(prompt)).toHaveLength(0);
  });

  it('refuses images to a model without vision, naming it, and leaves a fallback without vision out of the route', async () => {
    const user = await registerUser(t);
    const prompt = upstream.prompt({ content: 'never' });
    const refused = await send(user.accessToken, { content: prompt, model: 'text-only', attachments: [{ imageUrl: 'https://example.com/a.png' }] });
    expect(errorCodes(refused)).toEqual(['BAD_USER_INPUT']);
    expect(refused.errors?.[0]?.message).toContain('text-only');

    // failing-eyes cannot answer; its fallback could, but takes no images.
    const failed = await send(user.accessToken, { content: prompt, model: 'failing-eyes', attachments: [{ imageUrl: 'https://example.com/a.png' }] });
    expect(errorCodes(failed)).toEqual(['UPSTREAM_ERROR']);
    expect(upstream.requestsFor(prompt)).toHaveLength(0);
    // Without images the fallback answers.
    const textPrompt = upstream.prompt({ content: 'From the fallback.' });
    expect(expectData(await send(user.accessToken, { content: textPrompt, model: 'failing-eyes' })).sendMessage.assistantMessage.status).toBe('COMPLETE');

    const models = expectData(await t.execute(VisionModelsDocument, {})).models;
    expect(models.find((m) => m.id === 'gpt-4o-mini')?.vision).toBe(true);
    expect(models.find((m) => m.id === 'text-only')?.vision).toBe(false);
  });

  it('counts images in the context window and in the reservation', async () => {
    const user = await registerUser(t);
    const image = { imageUrl: 'https://example.com/a.png' };
    // 2,000 tokens of context: one image (1,600 by IMAGE_TOKEN_ESTIMATE) fits, two do not.
    const prompt = upstream.prompt({ content: 'One fits.' });
    expectData(await send(user.accessToken, { content: prompt, model: 'narrow-eyes', attachments: [image] }));
    const tooMany = await send(user.accessToken, { content: prompt, model: 'narrow-eyes', attachments: [image, image] });
    expect(errorCodes(tooMany)).toEqual(['BAD_USER_INPUT']);
    expect(tooMany.errors?.[0]?.message).toMatch(/too long/);

    // gpt-4o-mini's entry bills an image as up to 3,000 tokens: the reservation holds that much for each.
    const billed = upstream.prompt({ content: 'Reserved.' });
    const sent = expectData(await send(user.accessToken, { content: billed, attachments: [image, image] }));
    const reservation = await t.app.db.prisma.reservation.findFirstOrThrow({ where: { messageId: decodeGlobalId(sent.sendMessage.assistantMessage.id).id } });
    expect(reservation.promptEstimate).toBeGreaterThan(6000);
    expect(reservation.promptEstimate).toBeLessThan(6100);
  });

  it('lets a READ key read attachments but not send them, and a CHAT key send them and see them in its answer but not fetch them', async () => {
    const user = await registerUser(t);
    const prompt = upstream.prompt({ content: 'A pixel.' });
    const upload = await sendUploads(user.accessToken, prompt, [{ file: { bytes: PNG, name: 'pixel.png' } }]);
    const path = upload.data!.sendMessage.userMessage.attachments[0]!.url;
    const readKey = expectData(await t.execute(CreateScopedApiKeyDocument, { input: { name: 'read', scopes: ['READ'] } }, { token: user.accessToken })).createApiKey.secret;
    const chatKey = expectData(await t.execute(CreateScopedApiKeyDocument, { input: { name: 'chat', scopes: ['CHAT'] } }, { token: user.accessToken })).createApiKey.secret;

    const never = upstream.prompt({ content: 'never' });
    expect(errorCodes(await send(readKey, { content: never, attachments: [{ imageUrl: 'https://example.com/a.png' }] }))).toEqual(['FORBIDDEN']);
    expect((await sendUploads(readKey, never, [{ file: { bytes: PNG, name: 'pixel.png' } }])).codes).toEqual(['FORBIDDEN']);
    expect(upstream.requestsFor(never)).toHaveLength(0);
    expect((await fetchAttachment(path, readKey)).status).toBe(200);
    expect((await fetchAttachment(path, chatKey)).status).toBe(403);

    // What a CHAT key sends comes back to it in the mutation's answer, images included.
    const sentByKey = upstream.prompt({ content: 'Seen.' });
    const byKey = expectData(await send(chatKey, { content: sentByKey, attachments: [{ imageUrl: 'https://example.com/a.png' }] }));
    expect(byKey.sendMessage.userMessage.attachments).toEqual([expect.objectContaining({ url: 'https://example.com/a.png' })]);
  });
});

describe('image limits', () => {
  it('refuses more images than MAX_IMAGES_PER_MESSAGE, and one over MAX_IMAGE_BYTES, uploaded or as a data URL', async () => {
    const user = await registerUser(tight);
    const image = { imageUrl: 'https://example.com/a.png' };
    expect(errorCodes(await send(user.accessToken, { content: 'three', attachments: [image, image, image] }, tight))).toEqual(['BAD_USER_INPUT']);
    const big = Buffer.concat([PNG, Buffer.alloc(200)]);
    expect(errorCodes(await send(user.accessToken, { content: 'big', attachments: [{ imageUrl: dataUrl('image/png', big) }] }, tight))).toEqual(['BAD_USER_INPUT']);
    const uploaded = await sendUploads(user.accessToken, 'big', [{ file: { bytes: big, name: 'big.png' } }], tightUrl);
    expect(uploaded.codes).toEqual(['BAD_USER_INPUT']);
    expect(errorCodes(await send(user.accessToken, { content: 'long', attachments: [{ imageUrl: `https://example.com/${'a'.repeat(60)}.png` }] }, tight))).toEqual(['BAD_USER_INPUT']);
  });

  it('answers 413 to a multipart body over MAX_UPLOAD_BYTES, and 411 to one without a length', async () => {
    const user = await registerUser(tight);
    const huge = await sendUploads(user.accessToken, 'huge', [{ file: { bytes: Buffer.concat([PNG, Buffer.alloc(4096)]), name: 'huge.png' } }], tightUrl);
    expect(huge.status).toBe(413);
    expect(huge.codes).toEqual(['BAD_USER_INPUT']);

    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(tightUrl, { method: 'POST', headers: { 'content-type': 'multipart/form-data; boundary=x', 'transfer-encoding': 'chunked' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end('--x--\r\n');
    });
    expect(status).toBe(411);
  });
});

describe('images on Anthropic', () => {
  it('sends URL and base64 image blocks before the text of their turn', () => {
    const { params } = messagesRequest({
      model: 'claude-sonnet-4-5',
      maxTokens: 100,
      reasoning: false,
      messages: [
        { role: 'user', content: 'What is this?', images: [{ url: 'https://example.com/a.png' }] },
        { role: 'assistant', content: 'A cat.' },
        { role: 'user', content: 'And this?', images: [{ mimeType: 'image/png', data: PNG.toString('base64') }] },
      ],
    });
    expect(params.messages).toEqual([
      { role: 'user', content: [{ type: 'image', source: { type: 'url', url: 'https://example.com/a.png' } }, { type: 'text', text: 'What is this?' }] },
      { role: 'assistant', content: 'A cat.' },
      {
        role: 'user',
        content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG.toString('base64') } }, { type: 'text', text: 'And this?' }],
      },
    ]);
  });
});
