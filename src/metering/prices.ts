/**
 * Prices are integer micro-dollars per million tokens; money never touches floating point once
 * a price is loaded.
 */
export interface ModelPrice {
  inputMicrosPerMillion: number;
  /** Prompt tokens served from the provider's cache. */
  cachedInputMicrosPerMillion: number;
  outputMicrosPerMillion: number;
  /** Reasoning tokens (part of the completion tokens); most providers bill them as output. */
  reasoningMicrosPerMillion: number;
  /** Where the price came from: the price database, the operator's configuration, or marked free. */
  source: 'genai-prices' | 'configuration' | 'free' | 'demo';
}

/**
 * Token counts as OpenAI reports them: prompt tokens include the cached ones, completion
 * tokens include the reasoning ones.
 */
export interface MeteredUsage {
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
  reasoningTokens: number;
}

const MILLION = 1_000_000n;

export const isFree = (price: ModelPrice) =>
  price.inputMicrosPerMillion === 0 &&
  price.cachedInputMicrosPerMillion === 0 &&
  price.outputMicrosPerMillion === 0 &&
  price.reasoningMicrosPerMillion === 0;

/** Cost of a call in micro-dollars, each kind of token at its own rate, rounded up. */
export function costMicros(price: ModelPrice, usage: MeteredUsage): bigint {
  const cached = Math.min(usage.cachedTokens, usage.promptTokens);
  const reasoning = Math.min(usage.reasoningTokens, usage.completionTokens);
  const numerator =
    BigInt(usage.promptTokens - cached) * BigInt(price.inputMicrosPerMillion) +
    BigInt(cached) * BigInt(price.cachedInputMicrosPerMillion) +
    BigInt(usage.completionTokens - reasoning) * BigInt(price.outputMicrosPerMillion) +
    BigInt(reasoning) * BigInt(price.reasoningMicrosPerMillion);
  return (numerator + MILLION - 1n) / MILLION;
}
