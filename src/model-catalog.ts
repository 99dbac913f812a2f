import { z } from 'zod';
import { parseJsonSetting } from './json-setting.js';
import { genaiPrice, isFree, MAX_MICROS_PER_MILLION, zeroPrice, type ModelPrice } from './metering/prices.js';
import { DEFAULT_PROVIDER_ID, providersFromEnv, type ProviderSettings } from './providers/provider-settings.js';

/** Where a catalog model is served: a provider and that provider's name for the model. */
export interface Deployment {
  provider: string;
  /** The provider's own name for the model. */
  model: string;
  /** Overrides the provider's `prefill`. */
  prefill?: boolean;
  /** What a call served here costs. */
  price: ModelPrice;
}

export interface ModelInfo {
  id: string;
  provider: string;
  contextWindow: number;
  maxOutputTokens: number;
  /** Takes `max_completion_tokens` and no `temperature` (OpenAI's o-series and gpt-5). */
  reasoning: boolean;
  /** Takes images in user turns. */
  vision: boolean;
  /**
   * The most prompt tokens one image may be billed as, on this model and any vision fallback: what
   * a reservation holds per image. Unset: IMAGE_TOKEN_ESTIMATE. Some models bill an image as far
   * more tokens than it takes of the context window (gpt-4o-mini), so the window is checked with
   * IMAGE_TOKEN_ESTIMATE instead.
   */
  imageTokens?: number;
  /**
   * What a reservation holds per token: the highest rate of every deployment the model and its
   * fallbacks may be served by, so that the worst case of any attempt is covered. Never zero by
   * accident: only a model marked free, or the demo model, costs nothing.
   */
  price: ModelPrice;
  isDemo: boolean;
  /** Tried in order; each has its own price. */
  deployments: Deployment[];
  /** Catalog models tried, in order, once the deployments have failed. */
  fallbacks: string[];
  /** Overrides the provider's and UPSTREAM_TIMEOUT_SECONDS (reasoning models need longer). */
  timeoutMs?: number;
}

/** A catalog entry before it is priced; `price` when its entry says (MODELS_JSON). */
export interface ModelEntry {
  id: string;
  provider: string;
  contextWindow: number;
  maxOutputTokens: number;
  reasoning: boolean;
  vision: boolean;
  imageTokens?: number;
  price?: ModelPrice;
  deployments?: Array<{ provider: string; model: string; prefill?: boolean }>;
  fallbacks?: string[];
  timeoutMs?: number;
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
    vision: z.boolean().optional(),
    imageTokens: z.number().int().positive().max(1_000_000).optional(),
    deployments: z
      .array(z.strictObject({ provider: z.string().min(1), model: z.string().min(1), prefill: z.boolean().optional() }))
      .min(1)
      .optional(),
    fallbacks: z.array(z.string().min(1)).optional(),
    timeoutSeconds: z.number().positive().max(3600).optional(),
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
  const entries = parseJsonSetting(json, z.array(modelSchema).min(1)).map((m) => {
    const price = entryPrice(m);
    const entry: ModelEntry = {
      id: m.id,
      provider: m.provider,
      contextWindow: m.contextWindow,
      maxOutputTokens: m.maxOutputTokens,
      reasoning: m.reasoning ?? isReasoningModelId(m.id),
      vision: m.vision ?? false,
      ...(m.imageTokens ? { imageTokens: m.imageTokens } : {}),
      ...(m.deployments ? { deployments: m.deployments } : {}),
      ...(m.fallbacks ? { fallbacks: m.fallbacks } : {}),
      ...(m.timeoutSeconds ? { timeoutMs: Math.round(m.timeoutSeconds * 1000) } : {}),
    };
    return price ? { ...entry, price } : entry;
  });
  const problems = fallbackProblems(entries);
  if (problems.length > 0) throw new Error(problems.join('; '));
  return entries;
}

/** Fallbacks must name other models of the catalog, each once. */
function fallbackProblems(entries: ModelEntry[]): string[] {
  const ids = new Set(entries.map((e) => e.id));
  const problems: string[] = [];
  for (const entry of entries) {
    for (const fallback of entry.fallbacks ?? []) {
      if (fallback === entry.id) problems.push(`model "${entry.id}": cannot fall back to itself`);
      else if (!ids.has(fallback)) problems.push(`model "${entry.id}": fallback "${fallback}" is not in the catalog`);
    }
    if (new Set(entry.fallbacks).size !== (entry.fallbacks ?? []).length) problems.push(`model "${entry.id}": a fallback is named twice`);
  }
  return problems;
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
 * Prices each deployment of each entry: MODEL_PRICES_JSON first, then the entry's own price, then
 * genai-prices for the deployment's provider and upstream model. A deployment left without a
 * price, or priced at zero without being marked free, is a problem (reported under `origin`, the
 * variable the catalog comes from): nothing is ever billed $0 by accident.
 */
export function priceCatalog(
  entries: ModelEntry[],
  overrides: Map<string, ModelPrice> | undefined,
  origin: string,
  providers: ProviderSettings[],
  now = new Date(),
): { models: ModelInfo[]; problems: string[] } {
  const problems: string[] = [];
  const providerById = new Map(providers.map((p) => [p.id, p]));
  const defaultProvider = providerById.get(DEFAULT_PROVIDER_ID) ?? providers[0]!;
  const priced = entries.flatMap((entry): Array<Omit<ModelInfo, 'price'>> => {
    const named = entry.deployments ?? [{ provider: defaultProvider.id, model: entry.id }];
    const deployments = named.flatMap((d): Deployment[] => {
      const settings = providerById.get(d.provider);
      const where = entry.deployments ? `model "${entry.id}" deployment "${d.provider}/${d.model}"` : `model "${entry.id}"`;
      if (!settings) {
        problems.push(`${origin}: ${where} names provider "${d.provider}", which PROVIDERS_JSON does not define`);
        return [];
      }
      // An OpenAI-compatible server's models are priced by the entry's own provider label (or by model id).
      const pricedAs = settings.kind === 'openai-compatible' ? entry.provider : settings.kind;
      const price = overrides?.get(entry.id) ?? entry.price ?? genaiPrice(pricedAs, d.model, { now, contextWindow: entry.contextWindow });
      if (!price) {
        problems.push(`${origin}: ${where} has no known price; price it or mark it free in MODEL_PRICES_JSON`);
        return [];
      }
      if (isFree(price) && price.source !== 'free') {
        problems.push(
          `${origin}: ${where} is priced at zero by ${price.source === 'genai-prices' ? 'genai-prices' : 'its configuration'}; ` +
            `mark it free in MODEL_PRICES_JSON ("${entry.id}": "free") or give it a price`,
        );
      }
      return [{ provider: d.provider, model: d.model, ...(d.prefill === undefined ? {} : { prefill: d.prefill }), price }];
    });
    // A model with an unpriced deployment never enters the catalog (and the configuration is refused).
    if (deployments.length < named.length) return [];
    return [
      {
        id: entry.id,
        provider: entry.deployments ? deployments[0]!.provider : entry.provider,
        contextWindow: entry.contextWindow,
        maxOutputTokens: entry.maxOutputTokens,
        reasoning: entry.reasoning,
        vision: entry.vision,
        ...(entry.imageTokens ? { imageTokens: entry.imageTokens } : {}),
        isDemo: false,
        deployments,
        fallbacks: entry.fallbacks ?? [],
        ...(entry.timeoutMs ? { timeoutMs: entry.timeoutMs } : {}),
      },
    ];
  });
  const byId = new Map(priced.map((m) => [m.id, m]));
  const models = priced.map((model): ModelInfo => {
    const route = [model, ...model.fallbacks.flatMap((id) => byId.get(id) ?? [])];
    const imageTokens = highestImageTokens(route);
    return {
      ...model,
      ...(imageTokens ? { imageTokens } : {}),
      price: highestPrice(route.flatMap((m) => m.deployments.map((d) => d.price))),
    };
  });
  for (const id of overrides?.keys() ?? []) {
    if (!entries.some((e) => e.id === id)) problems.push(`MODEL_PRICES_JSON: model "${id}" is not in the model catalog`);
  }
  return { models, problems };
}

/**
 * What the route bills an image as at most: the highest `imageTokens` of its models that take
 * images (the others never receive any); undefined when none says, for IMAGE_TOKEN_ESTIMATE.
 */
function highestImageTokens(route: Array<Pick<ModelInfo, 'vision' | 'imageTokens'>>): number | undefined {
  const known = route.flatMap((m) => (m.vision && m.imageTokens ? [m.imageTokens] : []));
  return known.length > 0 ? Math.max(...known) : undefined;
}

/** Each rate at its highest among `prices` (the first when there is one). */
function highestPrice(prices: ModelPrice[]): ModelPrice {
  const [first, ...rest] = prices as [ModelPrice, ...ModelPrice[]];
  if (rest.length === 0) return first;
  const highest = (rate: keyof ModelPrice) => Math.max(...prices.map((p) => Number(p[rate] ?? 0)));
  const result: ModelPrice = {
    ...first,
    inputMicrosPerMillion: highest('inputMicrosPerMillion'),
    cachedInputMicrosPerMillion: highest('cachedInputMicrosPerMillion'),
    cacheWriteMicrosPerMillion: highest('cacheWriteMicrosPerMillion'),
    outputMicrosPerMillion: highest('outputMicrosPerMillion'),
    reasoningMicrosPerMillion: highest('reasoningMicrosPerMillion'),
  };
  return isFree(result) || prices.every((p) => p.source === first.source) ? result : { ...result, source: 'configuration' };
}

/**
 * The priced catalog the environment asks for: the demo model without any upstream configured,
 * else MODELS_JSON or OpenAI's models (on the default provider), with MODEL_PRICES_JSON applied.
 * Call it only once PROVIDERS_JSON, MODELS_JSON and MODEL_PRICES_JSON are known to parse.
 */
export function catalogFromEnv(
  env: { OPENAI_API_KEY?: string; PROVIDERS_JSON?: string; MODELS_JSON?: string; MODEL_PRICES_JSON?: string } & Record<string, string | undefined>,
  now = new Date(),
): { models: ModelInfo[]; problems: string[] } {
  if (!env.OPENAI_API_KEY && !env.PROVIDERS_JSON) return { models: [DEMO_MODEL], problems: [] };
  const configured = modelsFromJson(env.MODELS_JSON);
  const origin = configured ? 'MODELS_JSON' : 'MODEL_PRICES_JSON';
  return priceCatalog(configured ?? OPENAI_MODELS, modelPricesFromJson(env.MODEL_PRICES_JSON), origin, providersFromEnv(env), now);
}

const openai = (id: string, contextWindow: number, maxOutputTokens: number, imageTokens: number): ModelEntry => ({
  id,
  provider: 'openai',
  contextWindow,
  maxOutputTokens,
  reasoning: isReasoningModelId(id),
  vision: true,
  imageTokens,
});

/**
 * OpenAI's models, priced from genai-prices. Replace the list with MODELS_JSON, prices with MODEL_PRICES_JSON.
 * All take images; the last number is the most one image is billed as at high detail, from
 * OpenAI's vision pricing: 85 + 170 per 512 px tile (8 tiles at most) for gpt-4o and gpt-4.1,
 * 2833 + 5667 per tile for gpt-4o-mini, 1536 patches times 1.62 (gpt-4.1-mini) or 2.46 (nano).
 */
export const OPENAI_MODELS: ModelEntry[] = [
  openai('gpt-4o-mini', 128_000, 16_384, 2833 + 8 * 5667),
  openai('gpt-4o', 128_000, 16_384, 85 + 8 * 170),
  openai('gpt-4.1', 1_047_576, 32_768, 85 + 8 * 170),
  openai('gpt-4.1-mini', 1_047_576, 32_768, Math.ceil(1536 * 1.62)),
  openai('gpt-4.1-nano', 1_047_576, 32_768, Math.ceil(1536 * 2.46)),
];

/** The model of the built-in demo upstream: free, and labelled as a demo everywhere. */
export const DEMO_MODEL: ModelInfo = {
  id: 'switchboard-demo',
  provider: 'demo',
  contextWindow: 16_384,
  maxOutputTokens: 1024,
  reasoning: false,
  vision: false,
  price: zeroPrice('demo'),
  isDemo: true,
  deployments: [{ provider: DEFAULT_PROVIDER_ID, model: 'switchboard-demo', price: zeroPrice('demo') }],
  fallbacks: [],
};

export function findModel(models: ModelInfo[], id: string): ModelInfo | undefined {
  return models.find((m) => m.id === id);
}
