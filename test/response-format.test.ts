import { describe, expect, it } from 'vitest';
import { messagesRequest } from '../src/providers/anthropic-request.js';
import { registerUser } from './helpers/accounts.js';
import { errorCodes, expectData, startWithUpstreamForFile, type TestApp } from './helpers/app.js';
import { SendMessageDocument } from './helpers/chat-documents.js';
import { MockUpstream } from './helpers/upstream.js';
import { waitFor } from './helpers/wait.js';

const PERSON = {
  type: 'object',
  properties: { name: { type: 'string' }, age: { type: 'integer', minimum: 0 } },
  required: ['name', 'age'],
  additionalProperties: false,
};

describe('structured output', () => {
  let upstream: MockUpstream;
  let t: TestApp;
  startWithUpstreamForFile((app, mock) => {
    t = app;
    upstream = mock;
  });

  async function sentUpstream(responseFormat: Record<string, unknown>) {
    const user = await registerUser(t);
    const prompt = upstream.prompt({ content: '{"name":"Ada","age":36}' });
    expectData(await t.execute(SendMessageDocument, { input: { content: prompt, stream: false, responseFormat } as never }, { token: user.accessToken }));
    return waitFor('the upstream request', () => upstream.requestsFor(prompt)[0] as Record<string, unknown> | undefined);
  }

  it('asks OpenAI-compatible models for JSON that fits the schema, under response_format', async () => {
    const sent = await sentUpstream({ type: 'JSON_SCHEMA', name: 'person', schema: PERSON, strict: true });
    expect(sent.response_format).toEqual({ type: 'json_schema', json_schema: { name: 'person', schema: PERSON, strict: true } });
  });

  it('asks for any JSON object, and for nothing in particular with TEXT', async () => {
    expect((await sentUpstream({ type: 'JSON_OBJECT' })).response_format).toEqual({ type: 'json_object' });
    expect(await sentUpstream({ type: 'TEXT' })).not.toHaveProperty('response_format');
  });

  it('refuses a schema that is not valid JSON Schema, or a JSON_SCHEMA without a name, before any call', async () => {
    const user = await registerUser(t);
    const refused = [
      { type: 'JSON_SCHEMA', name: 'person', schema: { type: 'no-such-type' } },
      { type: 'JSON_SCHEMA', name: 'person', schema: { type: 'object', properties: { age: { minimum: 'zero' } } } },
      { type: 'JSON_SCHEMA', name: 'person', schema: ['not', 'an', 'object'] },
      { type: 'JSON_SCHEMA', schema: PERSON },
      { type: 'JSON_SCHEMA', name: 'has spaces', schema: PERSON },
      { type: 'JSON_SCHEMA', name: 'big', schema: { type: 'object', description: 'x'.repeat(17 * 1024) } },
    ];
    for (const responseFormat of refused) {
      const prompt = upstream.prompt({ content: 'never' });
      const result = await t.execute(SendMessageDocument, { input: { content: prompt, responseFormat } as never }, { token: user.accessToken });
      expect(errorCodes(result), JSON.stringify(responseFormat).slice(0, 80)).toEqual(['BAD_USER_INPUT']);
      expect(upstream.requestsFor(prompt)).toHaveLength(0);
    }
  });
});

describe('structured output on Anthropic', () => {
  const request = (responseFormat: Parameters<typeof messagesRequest>[0]['responseFormat']) =>
    messagesRequest({ model: 'claude-sonnet-4', messages: [{ role: 'user', content: 'hi' }], maxTokens: 100, reasoning: false, responseFormat }).params;

  it('sends the schema as output_config.format, and an object schema for any JSON object', () => {
    expect(request({ type: 'json_schema', name: 'person', schema: PERSON, strict: true })).toMatchObject({
      output_config: { format: { type: 'json_schema', schema: PERSON } },
    });
    expect(request({ type: 'json_object' })).toMatchObject({ output_config: { format: { type: 'json_schema', schema: { type: 'object' } } } });
    expect(request({ type: 'text' })).not.toHaveProperty('output_config');
  });
});
