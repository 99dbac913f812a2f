import type { ModelInfo } from '../../model-catalog.js';
import { builder } from '../builder.js';

const Pricing = builder.objectRef<ModelInfo>('ModelPricing').implement({
  description: 'Price in micro-dollars (1e-6 USD) per million tokens.',
  fields: (t) => ({
    promptMicrosPerMillion: t.exposeInt('promptMicrosPerMillion'),
    completionMicrosPerMillion: t.exposeInt('completionMicrosPerMillion'),
  }),
});

export const ModelRef = builder.objectRef<ModelInfo>('Model').implement({
  fields: (t) => ({
    id: t.exposeString('id'),
    provider: t.exposeString('provider'),
    contextWindow: t.exposeInt('contextWindow'),
    maxOutputTokens: t.exposeInt('maxOutputTokens'),
    pricing: t.field({ type: Pricing, resolve: (model) => model }),
    isDemo: t.exposeBoolean('isDemo', { description: 'True for the built-in demo model: no real LLM answers.' }),
  }),
});

builder.queryField('models', (t) =>
  t.field({
    type: [ModelRef],
    description: 'Models that sendMessage accepts.',
    resolve: (_root, _args, ctx) => ctx.services.config.chat.models,
  }),
);
