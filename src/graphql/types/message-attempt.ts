import { builder } from '../builder.js';
import { readGuarded } from '../read-scopes.js';

const AttemptOutcome = builder.enumType('AttemptOutcome', {
  description: 'OK: the call answered. ERROR: refused or failed before answering (HTTP error, connection). TIMEOUT: silent or stalled. CUT: the stream broke off mid-answer. REFUSED: the request itself was refused (too long, content policy, prefill).',
  values: ['OK', 'ERROR', 'TIMEOUT', 'CUT', 'REFUSED'] as const,
});

builder.prismaObject('MessageAttempt', {
  ...readGuarded,
  description: 'One upstream call made for a reply. A reply that failed over has several; the user pays for those whose text is in the reply (billed).',
  fields: (t) => ({
    provider: t.exposeString('provider'),
    model: t.exposeString('model', { description: 'The catalog model.' }),
    upstreamModel: t.exposeString('upstreamModel', { description: "The provider's name for the model." }),
    outcome: t.expose('outcome', { type: AttemptOutcome }),
    httpStatus: t.exposeInt('httpStatus', { nullable: true }),
    errorCode: t.exposeString('errorCode', { nullable: true, description: "The provider's error code, or the kind of failure." }),
    continued: t.exposeBoolean('continued', { description: 'Sent with the partial reply as the start of its answer (a continuation after a failure mid-reply).' }),
    promptTokens: t.exposeInt('promptTokens'),
    cachedTokens: t.exposeInt('cachedTokens'),
    cacheWriteTokens: t.exposeInt('cacheWriteTokens'),
    completionTokens: t.exposeInt('completionTokens'),
    reasoningTokens: t.exposeInt('reasoningTokens'),
    usageEstimated: t.exposeBoolean('usageEstimated'),
    costMicros: t.expose('costMicros', { type: 'SafeInt', description: 'What the provider charges for this call.' }),
    billed: t.exposeBoolean('billed', { description: 'Charged to the user: its text is part of the reply.' }),
    startedAt: t.expose('startedAt', { type: 'DateTime' }),
    firstTokenMs: t.exposeInt('firstTokenMs', { nullable: true }),
    durationMs: t.exposeInt('durationMs', { nullable: true }),
  }),
});
