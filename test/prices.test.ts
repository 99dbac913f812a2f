import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { problemsOf } from './helpers/config.js';
import { costMicros, dollarsToMicros, genaiPrice, type MeteredUsage, type ModelPrice } from '../src/metering/prices.js';
import { executeRaw, startTestApp } from './helpers/app.js';
import { isReasoningModelId } from '../src/model-catalog.js';

const base = { NODE_ENV: 'test', JWT_SECRET: 'p'.repeat(40), OPENAI_API_KEY: 'sk-test' };


const model = (id: string, extra: Record<string, unknown> = {}) => ({ id, contextWindow: 128_000, maxOutputTokens: 4096, ...extra });
const modelsJson = (...models: object[]) => JSON.stringify(models);

const price = (input: number, cachedInput: number, output: number, reasoning: number, cacheWrite = input): ModelPrice => ({
  inputMicrosPerMillion: input,
  cachedInputMicrosPerMillion: cachedInput,
  cacheWriteMicrosPerMillion: cacheWrite,
  outputMicrosPerMillion: output,
  reasoningMicrosPerMillion: reasoning,
  source: 'configuration',
});
const usage = (u: Partial<MeteredUsage>): MeteredUsage => ({
  promptTokens: 0,
  cachedTokens: 0,
  cacheWriteTokens: 0,
  completionTokens: 0,
  reasoningTokens: 0,
  ...u,
});

describe('dollars to micro-dollars', () => {
  it('converts the decimal the database wrote, rounding half up, without float artefacts', () => {
    expect(dollarsToMicros(0.15)).toBe(150_000);
    expect(dollarsToMicros(8.2)).toBe(8_200_000); // 8.2 * 1e6 is 8199999.999999999
    expect(dollarsToMicros(0.0001245)).toBe(125); // 0.0001245 * 1e6 is 124.49999999999999
    expect(dollarsToMicros(0.0000005)).toBe(1); // printed "5e-7"
    expect(dollarsToMicros(0.0000004)).toBe(0);
    expect(dollarsToMicros(0.003625)).toBe(3625);
    expect(dollarsToMicros(0)).toBe(0);
    expect(() => dollarsToMicros(-1)).toThrow(RangeError);
    expect(() => dollarsToMicros(Number.NaN)).toThrow(RangeError);
  });
});

describe('genai-prices lookup', () => {
  it("converts real models' prices: input, cached input, output, and reasoning at the output rate", () => {
    // OpenAI's list prices, as genai-prices has them: $0.15 / $0.075 cached / $0.60 per million,
    // and no price for cache writes (OpenAI charges none): the input rate.
    expect(genaiPrice('openai', 'gpt-4o-mini')).toEqual({
      inputMicrosPerMillion: 150_000,
      cachedInputMicrosPerMillion: 75_000,
      cacheWriteMicrosPerMillion: 150_000,
      outputMicrosPerMillion: 600_000,
      reasoningMicrosPerMillion: 600_000,
      source: 'genai-prices',
    });
    expect(genaiPrice('openai', 'gpt-4.1-nano')).toMatchObject({
      inputMicrosPerMillion: 100_000,
      cachedInputMicrosPerMillion: 25_000,
      outputMicrosPerMillion: 400_000,
    });
  });

  it("uses the database's reasoning rate when it has one, and the input rate when it has no cache rate", () => {
    // Perplexity's deep research model: $2 in, $8 out, $3 per million reasoning tokens, no cache price.
    expect(genaiPrice('perplexity', 'sonar-deep-research')).toEqual({
      inputMicrosPerMillion: 2_000_000,
      cachedInputMicrosPerMillion: 2_000_000,
      cacheWriteMicrosPerMillion: 2_000_000,
      outputMicrosPerMillion: 8_000_000,
      reasoningMicrosPerMillion: 3_000_000,
      source: 'genai-prices',
    });
  });

  it("reads Anthropic's cache writes at their own rate (the 5-minute one), apart from cache reads", () => {
    // Claude Sonnet 4: $3 in, $3.75 per million written to the cache, $0.30 read from it, $15 out.
    expect(genaiPrice('anthropic', 'claude-sonnet-4')).toEqual({
      inputMicrosPerMillion: 3_000_000,
      cachedInputMicrosPerMillion: 300_000,
      cacheWriteMicrosPerMillion: 3_750_000,
      outputMicrosPerMillion: 15_000_000,
      reasoningMicrosPerMillion: 15_000_000,
      source: 'genai-prices',
    });
  });

  it('matches a model of an unknown (OpenAI-compatible) provider by its id', () => {
    expect(genaiPrice('openai-compatible', 'gpt-4o-mini')).toEqual(genaiPrice('openai', 'gpt-4o-mini'));
    expect(genaiPrice('openai-compatible', 'deepseek-chat')?.source).toBe('genai-prices');
    expect(genaiPrice('openai-compatible', 'llama-x')).toBeUndefined();
    // A provider the database knows is searched alone.
    expect(genaiPrice('anthropic', 'gpt-4o-mini')).toBeUndefined();
  });

  it('uses the price in effect at the given time', () => {
    // o3 went from $10/$40 to $2/$8 on 2025-06-10.
    expect(genaiPrice('openai', 'o3', { now: new Date('2025-05-01T12:00:00Z') })).toMatchObject({
      inputMicrosPerMillion: 10_000_000,
      outputMicrosPerMillion: 40_000_000,
    });
    expect(genaiPrice('openai', 'o3', { now: new Date('2025-07-01T12:00:00Z') })).toMatchObject({
      inputMicrosPerMillion: 2_000_000,
      outputMicrosPerMillion: 8_000_000,
    });
  });

  it('never under-bills: tiered prices at the highest tier the context window reaches, time-of-day prices at their highest', () => {
    // Gemini 2.5 Pro: $1.25/$10 up to 200k prompt tokens, $2.50/$15 above.
    expect(genaiPrice('google', 'gemini-2.5-pro', { contextWindow: 128_000 })).toMatchObject({
      inputMicrosPerMillion: 1_250_000,
      outputMicrosPerMillion: 10_000_000,
    });
    expect(genaiPrice('google', 'gemini-2.5-pro', { contextWindow: 1_048_576 })).toMatchObject({
      inputMicrosPerMillion: 2_500_000,
      outputMicrosPerMillion: 15_000_000,
    });
    // DeepSeek chat: $0.27/$1.10 from 00:30 to 16:30 UTC, half that otherwise; the same whatever the hour.
    const offPeak = genaiPrice('deepseek', 'deepseek-chat', { now: new Date('2025-09-01T20:00:00Z') });
    const peak = genaiPrice('deepseek', 'deepseek-chat', { now: new Date('2025-09-01T10:00:00Z') });
    expect(offPeak).toMatchObject({ inputMicrosPerMillion: 270_000, cachedInputMicrosPerMillion: 70_000, outputMicrosPerMillion: 1_100_000 });
    expect(peak).toEqual(offPeak);
  });

  it('reports a model the database lists without any price as all zeros (for the caller to refuse)', () => {
    expect(genaiPrice('google', 'gemma-3')).toEqual({ ...price(0, 0, 0, 0), source: 'genai-prices' });
  });

  it('uses the bundled data only: no network, and nothing loads price updates', () => {
    const fetch = vi.spyOn(globalThis, 'fetch').mockRejectedValue(new Error('no network in this test'));
    try {
      expect(genaiPrice('openai', 'gpt-4o')?.inputMicrosPerMillion).toBe(2_500_000);
      expect(fetch).not.toHaveBeenCalled();
    } finally {
      fetch.mockRestore();
    }
    const sources = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
      );
    for (const file of sources(join(import.meta.dirname, '..', 'src'))) {
      const imports = readFileSync(file, 'utf8').match(/import\s*\{[^}]*\}\s*from\s*'@pydantic\/genai-prices'/g) ?? [];
      for (const line of imports) expect(line, file).not.toMatch(/updatePrices|waitForUpdate/);
    }
  });
});

describe('cost of a call', () => {
  const rates = price(1_000_000, 100_000, 2_000_000, 3_000_000);

  it('bills cached and reasoning tokens at their own rates', () => {
    // 600 uncached × $1 + 400 cached × $0.10 + 300 plain output × $2 + 200 reasoning × $3, per million.
    expect(costMicros(rates, usage({ promptTokens: 1000, cachedTokens: 400, completionTokens: 500, reasoningTokens: 200 }))).toBe(1840n);
    expect(costMicros(rates, usage({ promptTokens: 1000, completionTokens: 500 }))).toBe(2000n);
  });

  it('rounds a fraction of a micro-dollar up, and only a fraction', () => {
    const mini = genaiPrice('openai', 'gpt-4o-mini')!;
    expect(costMicros(mini, usage({ promptTokens: 1 }))).toBe(1n); // 0.15 µ$
    expect(costMicros(mini, usage({ promptTokens: 20 }))).toBe(3n); // exactly 3 µ$
    expect(costMicros(mini, usage({ promptTokens: 21 }))).toBe(4n); // 3.15 µ$
    expect(costMicros(mini, usage({ promptTokens: 1000, cachedTokens: 1000, completionTokens: 1000, reasoningTokens: 1000 }))).toBe(675n);
  });

  it('never counts more cached or reasoning tokens than there are prompt or completion tokens', () => {
    expect(costMicros(rates, usage({ promptTokens: 10, cachedTokens: 50, completionTokens: 10, reasoningTokens: 50 }))).toBe(31n);
  });

  it('bills cache writes at their own rate, cache reads at theirs and the rest of the prompt at the input rate', () => {
    const anthropic = price(3_000_000, 300_000, 15_000_000, 15_000_000, 3_750_000);
    // 1000 written × $3.75 + 4000 read × $0.30 + 500 fresh × $3 + 200 output × $15, per million:
    // 3750 + 1200 + 1500 + 3000 µ$.
    expect(costMicros(anthropic, usage({ promptTokens: 5500, cacheWriteTokens: 1000, cachedTokens: 4000, completionTokens: 200 }))).toBe(9450n);
    // The same prompt without the cache: every token at the input rate.
    expect(costMicros(anthropic, usage({ promptTokens: 5500, completionTokens: 200 }))).toBe(19_500n);
    // Writes alone: dearer than the input rate.
    expect(costMicros(anthropic, usage({ promptTokens: 1000, cacheWriteTokens: 1000 }))).toBe(3750n);
  });

  it('never counts more cache writes and reads together than there are prompt tokens, writes first', () => {
    const anthropic = price(3_000_000, 300_000, 15_000_000, 15_000_000, 3_750_000);
    // 100 prompt tokens, 80 said written and 50 read: 80 written, the other 20 read, none fresh.
    expect(costMicros(anthropic, usage({ promptTokens: 100, cacheWriteTokens: 80, cachedTokens: 50 }))).toBe(306n); // 300 + 6
    // More written than the prompt: the prompt, all written.
    expect(costMicros(anthropic, usage({ promptTokens: 100, cacheWriteTokens: 500, cachedTokens: 50 }))).toBe(375n);
  });
});

describe('model prices in the configuration', () => {
  it("prices OpenAI's built-in models from genai-prices", () => {
    const models = loadConfig(base).chat.models;
    expect(models.map((m) => m.id)).toEqual(['gpt-4o-mini', 'gpt-4o', 'gpt-4.1', 'gpt-4.1-mini', 'gpt-4.1-nano']);
    for (const m of models) {
      expect(m.price.source).toBe('genai-prices');
      expect(m.price.inputMicrosPerMillion).toBeGreaterThan(0);
      expect(m.price.outputMicrosPerMillion).toBeGreaterThan(0);
    }
    expect(models.find((m) => m.id === 'gpt-4o')?.price).toMatchObject({
      inputMicrosPerMillion: 2_500_000,
      cachedInputMicrosPerMillion: 1_250_000,
      outputMicrosPerMillion: 10_000_000,
    });
  });

  it('knows reasoning models by their id, and MODELS_JSON may say otherwise', () => {
    for (const id of ['o1', 'o3-mini', 'o4-mini-2025-04-16', 'gpt-5', 'gpt-5-mini', 'gpt-5.1', 'openai/o3']) expect(isReasoningModelId(id), id).toBe(true);
    for (const id of ['gpt-4o', 'gpt-4.1-mini', 'gpt-5-chat-latest', 'omni-moderation-latest', 'llama-3']) expect(isReasoningModelId(id), id).toBe(false);
    const models = loadConfig({
      ...base,
      MODELS_JSON: modelsJson(model('o3', { free: true, reasoning: false }), model('gpt-5-mini', { free: true }), model('my-thinker', { free: true, reasoning: true })),
    }).chat.models;
    expect(models.map((m) => [m.id, m.reasoning])).toEqual([['o3', false], ['gpt-5-mini', true], ['my-thinker', true]]);
  });

  it('serves the demo model at no cost, labelled as such', () => {
    const { models } = loadConfig({ NODE_ENV: 'test', JWT_SECRET: 'p'.repeat(40) }).chat;
    expect(models).toEqual([expect.objectContaining({ id: 'switchboard-demo', isDemo: true, price: { ...price(0, 0, 0, 0), source: 'demo' } })]);
  });

  it('reads MODELS_JSON prices (legacy prompt/completion fields, cached, cache-write and reasoning rates, free) and looks the others up', () => {
    const models = loadConfig({
      ...base,
      MODELS_JSON: modelsJson(
        model('legacy', { promptMicrosPerMillion: 150_000, completionMicrosPerMillion: 600_000 }),
        model('detailed', {
          promptMicrosPerMillion: 1_000_000,
          completionMicrosPerMillion: 2_000_000,
          cachedInputMicrosPerMillion: 250_000,
          cacheWriteMicrosPerMillion: 1_250_000,
          reasoningMicrosPerMillion: 4_000_000,
        }),
        model('local', { free: true }),
        model('gpt-4.1-mini'),
      ),
    }).chat.models;
    // Rates left out default to the prompt (input) and completion (output) rates.
    expect(models.map((m) => m.price)).toEqual([
      price(150_000, 150_000, 600_000, 600_000, 150_000),
      price(1_000_000, 250_000, 2_000_000, 4_000_000, 1_250_000),
      { ...price(0, 0, 0, 0), source: 'free' },
      { ...price(400_000, 100_000, 1_600_000, 1_600_000), source: 'genai-prices' },
    ]);
    expect(models[3]?.provider).toBe('openai-compatible');
  });

  it('lets MODEL_PRICES_JSON override any price, or mark a model free', () => {
    const models = loadConfig({
      ...base,
      MODELS_JSON: modelsJson(
        model('gpt-4o-mini'),
        model('llama-x', { promptMicrosPerMillion: 1, completionMicrosPerMillion: 1 }),
        model('llama-local'),
      ),
      MODEL_PRICES_JSON: JSON.stringify({
        'gpt-4o-mini': {
          inputMicrosPerMillion: 200_000,
          outputMicrosPerMillion: 800_000,
          cachedInputMicrosPerMillion: 50_000,
          cacheWriteMicrosPerMillion: 250_000,
        },
        'llama-x': { inputMicrosPerMillion: 300_000, outputMicrosPerMillion: 900_000, reasoningMicrosPerMillion: 1_200_000 },
        'llama-local': 'free',
      }),
    }).chat.models;
    expect(models.map((m) => m.price)).toEqual([
      price(200_000, 50_000, 800_000, 800_000, 250_000),
      price(300_000, 300_000, 900_000, 1_200_000, 300_000),
      { ...price(0, 0, 0, 0), source: 'free' },
    ]);
    expect(loadConfig({ ...base, MODEL_PRICES_JSON: '{"gpt-4o":"free"}' }).chat.models.find((m) => m.id === 'gpt-4o')?.price.source).toBe('free');
  });

  it('refuses a model with no known price, one line per model', () => {
    const problems = problemsOf({ ...base, MODELS_JSON: modelsJson(model('llama-x'), model('gpt-4o-mini'), model('mystery-7b')) });
    expect(problems).toEqual([
      'MODELS_JSON: model "llama-x" has no known price; price it or mark it free in MODEL_PRICES_JSON',
      'MODELS_JSON: model "mystery-7b" has no known price; price it or mark it free in MODEL_PRICES_JSON',
    ]);
    expect(() => loadConfig({ ...base, MODELS_JSON: modelsJson(model('llama-x')) })).toThrow(ConfigError);
    expect(problemsOf({ ...base, MODELS_JSON: modelsJson(model('llama-x')), MODEL_PRICES_JSON: '{"llama-x":"free"}' })).toEqual([]);
  });

  it('refuses a zero price that was not marked free, whether configured or from the database', () => {
    const problems = problemsOf({
      ...base,
      MODELS_JSON: modelsJson(
        model('zero', { promptMicrosPerMillion: 0, completionMicrosPerMillion: 0 }),
        model('gemma-3', { provider: 'google' }),
        model('zero-too'),
        model('marked', { promptMicrosPerMillion: 0, completionMicrosPerMillion: 0, free: true }),
        // Not zero: its cache writes cost something.
        model('writes-priced', { promptMicrosPerMillion: 0, completionMicrosPerMillion: 0, cacheWriteMicrosPerMillion: 1 }),
      ),
      MODEL_PRICES_JSON: JSON.stringify({ 'zero-too': { inputMicrosPerMillion: 0, outputMicrosPerMillion: 0 } }),
    });
    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(/^MODELS_JSON: model "zero" is priced at zero by its configuration; mark it free in MODEL_PRICES_JSON/);
    expect(problems[1]).toMatch(/^MODELS_JSON: model "gemma-3" is priced at zero by genai-prices; mark it free/);
    expect(problems[2]).toMatch(/^MODELS_JSON: model "zero-too" is priced at zero by its configuration/);
  });

  it('reports a malformed MODEL_PRICES_JSON with the other problems', () => {
    expect(problemsOf({ ...base, MODEL_PRICES_JSON: '{nope' })).toEqual(['MODEL_PRICES_JSON: is not valid JSON']);
    expect(problemsOf({ ...base, MODEL_PRICES_JSON: '[]' }).join()).toMatch(/^MODEL_PRICES_JSON: must be an object keyed by model id/);
    const problems = problemsOf({
      ...base,
      PORT: 'eighty',
      MODEL_PRICES_JSON: JSON.stringify({
        'gpt-4o': 'FREE',
        'gpt-4.1': { inputMicrosPerMillion: -1, outputMicrosPerMillion: 1.5, cacheWriteMicrosPerMillion: -2 },
        'gpt-4o-mini': { inputMicrosPerMillion: 1, outputMicrosPerMillion: 2, cachedMicrosPerMillion: 3 },
      }),
    });
    expect(problems[0]).toMatch(/^PORT:/);
    expect(problems).toHaveLength(2);
    const line = problems[1]!;
    expect(line).toMatch(/^MODEL_PRICES_JSON: /);
    expect(line).toContain('"gpt-4o": must be "free" or {');
    expect(line).toContain('"gpt-4.1".inputMicrosPerMillion');
    expect(line).toContain('"gpt-4.1".outputMicrosPerMillion');
    expect(line).toContain('"gpt-4.1".cacheWriteMicrosPerMillion');
    expect(line).toMatch(/"gpt-4o-mini".*cachedMicrosPerMillion/);
    expect(problemsOf({ ...base, MODEL_PRICES_JSON: '{"gpt-4o-mni":"free"}' })).toEqual([
      'MODEL_PRICES_JSON: model "gpt-4o-mni" is not in the model catalog',
    ]);
  });

  it('reports MODELS_JSON prices it cannot use', () => {
    const problems = problemsOf({
      ...base,
      MODELS_JSON: modelsJson(
        model('half', { promptMicrosPerMillion: 5 }),
        model('both', { promptMicrosPerMillion: 5, completionMicrosPerMillion: 5, free: true }),
        model('writes-only', { cacheWriteMicrosPerMillion: 5 }),
        model('free-writes', { promptMicrosPerMillion: 0, completionMicrosPerMillion: 0, cacheWriteMicrosPerMillion: 5, free: true }),
      ),
    });
    expect(problems).toEqual([
      'MODELS_JSON: 0: a price needs both promptMicrosPerMillion and completionMicrosPerMillion; 1.free: a model marked free cannot have a non-zero price; ' +
        '2: a price needs both promptMicrosPerMillion and completionMicrosPerMillion; 3.free: a model marked free cannot have a non-zero price',
    ]);
  });
});

describe('ModelPricing in the API', () => {
  let stop: (() => Promise<void>) | undefined;
  afterEach(() => stop?.());

  it('keeps prompt and completion prices and adds cached, cache-write, reasoning, source and free', async () => {
    const t = await startTestApp({
      OPENAI_API_KEY: 'sk-test',
      MODELS_JSON: modelsJson(model('gpt-4o-mini', { provider: 'openai' }), model('llama-x'), model('local')),
      MODEL_PRICES_JSON: JSON.stringify({
        'llama-x': {
          inputMicrosPerMillion: 300_000,
          outputMicrosPerMillion: 900_000,
          reasoningMicrosPerMillion: 1_200_000,
          cacheWriteMicrosPerMillion: 375_000,
        },
        local: 'free',
      }),
    });
    stop = t.stop;
    const result = await executeRaw(t, {
      query: `{ models { id pricing { promptMicrosPerMillion cachedPromptMicrosPerMillion cacheWriteMicrosPerMillion
        completionMicrosPerMillion reasoningMicrosPerMillion source free } } }`,
    });
    expect(result.errors).toBeUndefined();
    expect(result.data?.models).toEqual([
      {
        id: 'gpt-4o-mini',
        pricing: {
          promptMicrosPerMillion: 150_000,
          cachedPromptMicrosPerMillion: 75_000,
          cacheWriteMicrosPerMillion: 150_000,
          completionMicrosPerMillion: 600_000,
          reasoningMicrosPerMillion: 600_000,
          source: 'GENAI_PRICES',
          free: false,
        },
      },
      {
        id: 'llama-x',
        pricing: {
          promptMicrosPerMillion: 300_000,
          cachedPromptMicrosPerMillion: 300_000,
          cacheWriteMicrosPerMillion: 375_000,
          completionMicrosPerMillion: 900_000,
          reasoningMicrosPerMillion: 1_200_000,
          source: 'CONFIGURATION',
          free: false,
        },
      },
      {
        id: 'local',
        pricing: {
          promptMicrosPerMillion: 0,
          cachedPromptMicrosPerMillion: 0,
          cacheWriteMicrosPerMillion: 0,
          completionMicrosPerMillion: 0,
          reasoningMicrosPerMillion: 0,
          source: 'FREE',
          free: true,
        },
      },
    ]);
  });
});
