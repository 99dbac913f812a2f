import { z } from 'zod';
import { parseJsonSetting } from './json-setting.js';
import { genaiPrice, isFree, MAX_MICROS_PER_MILLION, zeroPrice, type ModelPrice } from './metering/prices.js';

export interface ModelInfo {
  id: string;
  provider: string;
  contextWindow: number;
  maxOutputTokens: number;
  /** Takes `max_completion_tokens` and no `temperature` (OpenAI's o-series and gpt-5). */
  reasoning: boolean;
  /** Never zero by accident: only a model marked free, or the demo model, costs nothing. */
  price: ModelPrice;
  isDemo: boolean;
}

/** A catalog entry before it is priced; `price` when its entry says (MODELS_JSON). */
export interface ModelEntry {
  id: string;
  provider: string;
  contextWindow: number;
  maxOutputTokens: number;
  reasoning: boolean;
  price?: ModelPrice;
}

/**
 * OpenAI's reasoning models by id (o1, o3-mini, o4-mini, gpt-5, gpt-5-mini, also behind a router's
 * `openai/` prefix); gpt-5's chat variants are not. MODELS_JSON's `reasoning` overrides it.
 */
export function isReasoningModelId(id: string): boolean {
  const name = id.replace(/^openai\//, '');
  return /^(o\d+|gpt-5)([-.]|$)/.test(name) && !/^gpt-5[\w.]*-chat/.test(name);
}

const micros = z
  .number()
  .int()
  .nonnegative()
  .max(MAX_MICROS_PER_MILLION, `must be at most ${MAX_MICROS_PER_MILLION} micro-dollars per million tokens`);

const modelSchema = z
  .object({
    id: z.string().min(1),
    provider: z.string().min(1).default('openai-compatible'),
    contextWindow: z.number().int().positive(),
    maxOutputTokens: z.number().int().positive(),
    promptMicrosPerMillion: micros.optional(),
    completionMicrosPerMillion: micros.optional(),
    cachedInputMicrosPerMillion: micros.optional(),
    cacheWriteMicrosPerMillion: micros.optional(),
    reasoningMicrosPerMillion: micros.optional(),
    free: z.boolean().optional(),
    reasoning: z.boolean().optional(),
  })
  .superRefine((m, ctx) => {
    const rates = [
      m.promptMicrosPerMillion,
      m.completionMicrosPerMillion,
      m.cachedInputMicrosPerMillion,
      m.cacheWriteMicrosPerMillion,
      m.reasoningMicrosPerMillion,
    ];
    const priced = rates.some((r) => r !== undefined);
    if (priced && (m.promptMicrosPerMillion === undefined || m.completionMicrosPerMillion === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'a price needs both promptMicrosPerMillion and completionMicrosPerMillion' });
    }
    if (m.free && rates.some((r) => r !== undefined && r > 0)) {
      ctx.addIssue({ code: 'custom', path: ['free'], message: 'a model marked free cannot have a non-zero price' });
    }
  });

function entryPrice(m: z.infer<typeof modelSchema>): ModelPrice | undefined {
  if (m.free) return zeroPrice('free');
  if (m.promptMicrosPerMillion === undefined || m.completionMicrosPerMillion === undefined) return undefined;
  return {
    inputMicrosPerMillion: m.promptMicrosPerMillion,
    cachedInputMicrosPerMillion: m.cachedInputMicrosPerMillion ?? m.promptMicrosPerMillion,
    cacheWriteMicrosPerMillion: m.cacheWriteMicrosPerMillion ?? m.promptMicrosPerMillion,
    outputMicrosPerMillion: m.completionMicrosPerMillion,
    reasoningMicrosPerMillion: m.reasoningMicrosPerMillion ?? m.completionMicrosPerMillion,
    source: 'configuration',
  };
}

/**
 * Parses MODELS_JSON; undefined when unset, throws a readable error when malformed. An entry
 * without prices is priced from genai-prices later (`priceCatalog`).
 */
export function modelsFromJson(json: string | undefined): ModelEntry[] | undefined {
  if (!json) return undefined;
  return parseJsonSetting(json, z.array(modelSchema).min(1)).map((m) => {
    const price = entryPrice(m);
    const entry: ModelEntry = {
      id: m.id,
      provider: m.provider,
      contextWindow: m.contextWindow,
      maxOutputTokens: m.maxOutputTokens,
      reasoning: m.reasoning ?? isReasoningModelId(m.id),
    };
    return price ? { ...entry, price } : entry;
  });
}

const configuredPriceSchema = z.strictObject({
  inputMicrosPerMillion: micros,
  outputMicrosPerMillion: micros,
  cachedInputMicrosPerMillion: micros.optional(),
  cacheWriteMicrosPerMillion: micros.optional(),
  reasoningMicrosPerMillion: micros.optional(),
});

const PRICE_SHAPE =
  '"free" or { inputMicrosPerMillion, outputMicrosPerMillion, cachedInputMicrosPerMillion?, cacheWriteMicrosPerMillion?, reasoningMicrosPerMillion? }';

/**
 * Parses MODEL_PRICES_JSON, `{ "<model id>": "free" | { inputMicrosPerMillion, … } }`: prices that
 * override any other. Undefined when unset; throws a readable error when malformed.
 */
export function modelPricesFromJson(json: string | undefined): Map<string, ModelPrice> | undefined {
  if (!json) return undefined;
  const raw = parseJsonSetting<unknown>(json);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new Error(`must be an object keyed by model id, each value ${PRICE_SHAPE}`);
  }
  const prices = new Map<string, ModelPrice>();
  const problems: string[] = [];
  for (const [id, value] of Object.entries(raw)) {
    if (value === 'free') {
      prices.set(id, zeroPrice('free'));
      continue;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      problems.push(`${JSON.stringify(id)}: must be ${PRICE_SHAPE}`);
      continue;
    }
    const parsed = configuredPriceSchema.safeParse(value);
    if (!parsed.success) {
      problems.push(...parsed.error.issues.map((i) => `${[JSON.stringify(id), ...i.path].join('.')}: ${i.message}`));
      continue;
    }
    const p = parsed.data;
    prices.set(id, {
      inputMicrosPerMillion: p.inputMicrosPerMillion,
      cachedInputMicrosPerMillion: p.cachedInputMicrosPerMillion ?? p.inputMicrosPerMillion,
      cacheWriteMicrosPerMillion: p.cacheWriteMicrosPerMillion ?? p.inputMicrosPerMillion,
      outputMicrosPerMillion: p.outputMicrosPerMillion,
      reasoningMicrosPerMillion: p.reasoningMicrosPerMillion ?? p.outputMicrosPerMillion,
      source: 'configuration',
    });
  }
  if (problems.length > 0) throw new Error(problems.join('; '));
  return prices;
}

/**
 * Prices each entry: MODEL_PRICES_JSON first, then the entry's own price, then genai-prices. A
 * model left without a price, or priced at zero without being marked free, is a problem (reported
 * under `origin`, the variable the catalog comes from): nothing is ever billed $0 by accident.
 */
export function priceCatalog(
  entries: ModelEntry[],
  overrides: Map<string, ModelPrice> | undefined,
  origin: string,
  now = new Date(),
): { models: ModelInfo[]; problems: string[] } {
  const problems: string[] = [];
  const models = entries.flatMap((entry): ModelInfo[] => {
    const price =
      overrides?.get(entry.id) ?? entry.price ?? genaiPrice(entry.provider, entry.id, { now, contextWindow: entry.contextWindow });
    if (!price) {
      problems.push(`${origin}: model "${entry.id}" has no known price; price it or mark it free in MODEL_PRICES_JSON`);
    } else if (isFree(price) && price.source !== 'free') {
      problems.push(
        `${origin}: model "${entry.id}" is priced at zero by ${price.source === 'genai-prices' ? 'genai-prices' : 'its configuration'}; ` +
          `mark it free in MODEL_PRICES_JSON ("${entry.id}": "free") or give it a price`,
      );
    }
    // A model without a price never enters the catalog (and the configuration is refused).
    return price ? [{ ...entry, price, isDemo: false }] : [];
  });
  for (const id of overrides?.keys() ?? []) {
    if (!entries.some((e) => e.id === id)) problems.push(`MODEL_PRICES_JSON: model "${id}" is not in the model catalog`);
  }
  return { models, problems };
}

/**
 * The priced catalog the environment asks for: the demo model without an upstream key, else
 * MODELS_JSON or OpenAI's models, with MODEL_PRICES_JSON applied. Call it only once MODELS_JSON and
 * MODEL_PRICES_JSON are known to parse.
 */
export function catalogFromEnv(
  env: { OPENAI_API_KEY?: string; MODELS_JSON?: string; MODEL_PRICES_JSON?: string },
  now = new Date(),
): { models: ModelInfo[]; problems: string[] } {
  if (!env.OPENAI_API_KEY) return { models: [DEMO_MODEL], problems: [] };
  const configured = modelsFromJson(env.MODELS_JSON);
  const origin = configured ? 'MODELS_JSON' : 'MODEL_PRICES_JSON';
  return priceCatalog(configured ?? OPENAI_MODELS, modelPricesFromJson(env.MODEL_PRICES_JSON), origin, now);
}

const openai = (id: string, contextWindow: number, maxOutputTokens: number): ModelEntry => ({
  id,
  provider: 'openai',
  contextWindow,
  maxOutputTokens,
  reasoning: isReasoningModelId(id),
});

/** OpenAI's models, priced from genai-prices. Replace the list with MODELS_JSON, prices with MODEL_PRICES_JSON. */
export const OPENAI_MODELS: ModelEntry[] = [
  openai('gpt-4o-mini', 128_000, 16_384),
  openai('gpt-4o', 128_000, 16_384),
  openai('gpt-4.1', 1_047_576, 32_768),
  openai('gpt-4.1-mini', 1_047_576, 32_768),
  openai('gpt-4.1-nano', 1_047_576, 32_768),
];

/** The model of the built-in demo upstream: free, and labelled as a demo everywhere. */
export const DEMO_MODEL: ModelInfo = {
  id: 'switchboard-demo',
  provider: 'demo',
  contextWindow: 16_384,
  maxOutputTokens: 1024,
  reasoning: false,
  price: zeroPrice('demo'),
  isDemo: true,
};

export function findModel(models: ModelInfo[], id: string): ModelInfo | undefined {
  return models.find((m) => m.id === id);
}
