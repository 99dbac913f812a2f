/** Prices are integer micro-dollars per million tokens; money never touches floating point. */
export interface Pricing {
  promptMicrosPerMillion: number;
  completionMicrosPerMillion: number;
}

export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
}

const MILLION = 1_000_000n;

/** Cost of a call in micro-dollars, rounded up so that usage is never billed below its price. */
export function costMicros(pricing: Pricing, usage: TokenUsage): bigint {
  const numerator =
    BigInt(usage.promptTokens) * BigInt(pricing.promptMicrosPerMillion) +
    BigInt(usage.completionTokens) * BigInt(pricing.completionMicrosPerMillion);
  return (numerator + MILLION - 1n) / MILLION;
}
