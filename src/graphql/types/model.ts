import { isFree, type ModelPrice } from '../../metering/prices.js';
import type { ModelInfo } from '../../model-catalog.js';
import { builder } from '../builder.js';

const PriceSource = builder.enumType('PriceSource', {
  description: 'Where a model\'s price comes from.',
  values: {
    GENAI_PRICES: { value: 'genai-prices', description: 'The genai-prices database bundled with the server.' },
    CONFIGURATION: { value: 'configuration', description: 'The operator\'s configuration (MODEL_PRICES_JSON or MODELS_JSON).' },
    FREE: { value: 'free', description: 'Marked free by the operator.' },
    DEMO: { value: 'demo', description: 'The built-in demo model, which costs nothing.' },
  } as const,
});

const Pricing = builder.objectRef<ModelPrice>('ModelPricing').implement({
  description: 'Price in micro-dollars (1e-6 USD) per million tokens.',
  fields: (t) => ({
    promptMicrosPerMillion: t.int({
      description: 'Prompt tokens not served from the cache.',
      resolve: (price) => price.inputMicrosPerMillion,
    }),
    cachedPromptMicrosPerMillion: t.int({
      description: 'Prompt tokens served from the provider\'s cache.',
      resolve: (price) => price.cachedInputMicrosPerMillion,
    }),
    cacheWriteMicrosPerMillion: t.int({
      description: 'Prompt tokens written to the provider\'s cache.',
      resolve: (price) => price.cacheWriteMicrosPerMillion,
    }),
    completionMicrosPerMillion: t.int({
      description: 'Completion tokens other than reasoning tokens.',
      resolve: (price) => price.outputMicrosPerMillion,
    }),
    reasoningMicrosPerMillion: t.int({
      description: 'Reasoning tokens (counted within the completion tokens).',
      resolve: (price) => price.reasoningMicrosPerMillion,
    }),
    source: t.field({ type: PriceSource, resolve: (price) => price.source }),
    free: t.boolean({ description: 'True when every rate is zero.', resolve: (price) => isFree(price) }),
  }),
});

export const ModelRef = builder.objectRef<ModelInfo>('Model').implement({
  fields: (t) => ({
    id: t.exposeString('id'),
    provider: t.exposeString('provider'),
    contextWindow: t.exposeInt('contextWindow'),
    maxOutputTokens: t.exposeInt('maxOutputTokens'),
    vision: t.exposeBoolean('vision', { description: 'Takes images (sendMessage attachments).' }),
    pricing: t.field({ type: Pricing, resolve: (model) => model.price }),
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
