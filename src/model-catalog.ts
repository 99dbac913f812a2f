import { z } from 'zod';

export interface ModelInfo {
  id: string;
  provider: string;
  contextWindow: number;
  maxOutputTokens: number;
  promptMicrosPerMillion: number;
  completionMicrosPerMillion: number;
  isDemo: boolean;
}

const modelSchema = z.object({
  id: z.string().min(1),
  provider: z.string().min(1).default('openai-compatible'),
  contextWindow: z.number().int().positive(),
  maxOutputTokens: z.number().int().positive(),
  promptMicrosPerMillion: z.number().int().nonnegative(),
  completionMicrosPerMillion: z.number().int().nonnegative(),
});

/** Parses MODELS_JSON; undefined when unset, throws a readable error when malformed. */
export function modelsFromJson(json: string | undefined): ModelInfo[] | undefined {
  if (!json) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    throw new Error('is not valid JSON');
  }
  const parsed = z.array(modelSchema).min(1).safeParse(raw);
  if (!parsed.success) throw new Error(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  return parsed.data.map((m) => ({ ...m, isDemo: false }));
}

const openai = (id: string, contextWindow: number, maxOutputTokens: number, prompt: number, completion: number): ModelInfo => ({
  id,
  provider: 'openai',
  contextWindow,
  maxOutputTokens,
  promptMicrosPerMillion: prompt,
  completionMicrosPerMillion: completion,
  isDemo: false,
});

/** OpenAI list prices (USD per million tokens, as micro-dollars). Override with MODELS_JSON. */
export const OPENAI_MODELS: ModelInfo[] = [
  openai('gpt-4o-mini', 128_000, 16_384, 150_000, 600_000),
  openai('gpt-4o', 128_000, 16_384, 2_500_000, 10_000_000),
  openai('gpt-4.1', 1_047_576, 32_768, 2_000_000, 8_000_000),
  openai('gpt-4.1-mini', 1_047_576, 32_768, 400_000, 1_600_000),
  openai('gpt-4.1-nano', 1_047_576, 32_768, 100_000, 400_000),
];

/** The model of the built-in demo upstream: free, and labelled as a demo everywhere. */
export const DEMO_MODEL: ModelInfo = {
  id: 'switchboard-demo',
  provider: 'demo',
  contextWindow: 16_384,
  maxOutputTokens: 1024,
  promptMicrosPerMillion: 0,
  completionMicrosPerMillion: 0,
  isDemo: true,
};

export function findModel(models: ModelInfo[], id: string): ModelInfo | undefined {
  return models.find((m) => m.id === id);
}
