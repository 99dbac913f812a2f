import { calcPrice, findProvider, type TieredPrices } from '@pydantic/genai-prices';

// genai-prices is used with the data bundled in the installed package only. Its one way to load
// newer data is `updatePrices`, which is never called here: nothing is fetched at run time, and
// prices change when the package is upgraded (or through MODEL_PRICES_JSON).

/**
 * Prices are integer micro-dollars per million tokens; money never touches floating point once
 * a price is loaded.
 */
export interface ModelPrice {
  inputMicrosPerMillion: number;
  /** Prompt tokens served from the provider's cache. */
  cachedInputMicrosPerMillion: number;
  /** Prompt tokens written to the provider's cache (Anthropic's 5-minute writes cost 1.25× input). */
  cacheWriteMicrosPerMillion: number;
  outputMicrosPerMillion: number;
  /** Reasoning tokens (part of the completion tokens); most providers bill them as output. */
  reasoningMicrosPerMillion: number;
  /** A fixed price per call, whatever its tokens (a Realtime session); absent for token-priced models. */
  perCallMicros?: number;
  /** Where the price came from: the price database, the operator's configuration, or marked free. */
  source: 'genai-prices' | 'configuration' | 'free' | 'demo';
}

/**
 * Token counts as OpenAI reports them: prompt tokens include the cached ones (read from the
 * provider's cache) and those written to it, completion tokens include the reasoning ones.
 */
export interface MeteredUsage {
  promptTokens: number;
  cachedTokens: number;
  /** Prompt tokens written to the provider's cache (Anthropic's cache_creation_input_tokens). */
  cacheWriteTokens: number;
  completionTokens: number;
  reasoningTokens: number;
}

const MILLION = 1_000_000n;

export const isFree = (price: ModelPrice) =>
  price.inputMicrosPerMillion === 0 &&
  price.cachedInputMicrosPerMillion === 0 &&
  price.cacheWriteMicrosPerMillion === 0 &&
  price.outputMicrosPerMillion === 0 &&
  price.reasoningMicrosPerMillion === 0 &&
  (price.perCallMicros ?? 0) === 0;

/**
 * Cost of a call in micro-dollars: each kind of token at its own rate, rounded up, plus any price
 * per call. Cache writes and reads are parts of the prompt and together never count for more than
 * it; writes are counted first (they normally cost the most), so that inconsistent counts do not under-bill.
 */
export function costMicros(price: ModelPrice, usage: MeteredUsage): bigint {
  const written = Math.min(usage.cacheWriteTokens, usage.promptTokens);
  const cached = Math.min(usage.cachedTokens, usage.promptTokens - written);
  const reasoning = Math.min(usage.reasoningTokens, usage.completionTokens);
  const numerator =
    BigInt(usage.promptTokens - written - cached) * BigInt(price.inputMicrosPerMillion) +
    BigInt(written) * BigInt(price.cacheWriteMicrosPerMillion) +
    BigInt(cached) * BigInt(price.cachedInputMicrosPerMillion) +
    BigInt(usage.completionTokens - reasoning) * BigInt(price.outputMicrosPerMillion) +
    BigInt(reasoning) * BigInt(price.reasoningMicrosPerMillion);
  return (numerator + MILLION - 1n) / MILLION + BigInt(price.perCallMicros ?? 0);
}

/** The largest price a GraphQL Int can carry: $2,147.48 per million tokens. */
export const MAX_MICROS_PER_MILLION = 2_147_483_647;

/** All rates zero; `source` says whose decision that was. */
export const zeroPrice = (source: 'free' | 'demo'): ModelPrice => ({
  inputMicrosPerMillion: 0,
  cachedInputMicrosPerMillion: 0,
  cacheWriteMicrosPerMillion: 0,
  outputMicrosPerMillion: 0,
  reasoningMicrosPerMillion: 0,
  source,
});

/**
 * Dollars (a float, as genai-prices holds them) to integer micro-dollars, rounded half up at the
 * sixth decimal. The conversion works on the shortest decimal that reads back as the same float
 * (what `String` prints): 8.2 becomes exactly 8200000 (8.2 × 1e6 is 8199999.999999999), and
 * 0.0001245 rounds up to 125 (× 1e6 gives 124.49999999999999).
 */
export function dollarsToMicros(dollars: number): number {
  if (!Number.isFinite(dollars) || dollars < 0) throw new RangeError(`not a price in dollars: ${dollars}`);
  const [mantissa = '0', exponent = '0'] = String(dollars).split('e');
  const [whole = '0', fraction = ''] = mantissa.split('.');
  // dollars = digits × 10^(exponent − fraction.length), so micros = digits × 10^scale.
  const digits = BigInt(whole + fraction);
  const scale = Number(exponent) - fraction.length + 6;
  const micros = scale >= 0 ? digits * 10n ** BigInt(scale) : (2n * digits + 10n ** BigInt(-scale)) / (2n * 10n ** BigInt(-scale));
  if (micros > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`price out of range: ${dollars} dollars`);
  return Number(micros);
}

export interface PriceLookupOptions {
  /** The price history entry in effect at this instant is used (default: now). */
  now?: Date;
  /**
   * The model's context window. Tiered prices (a higher rate once a prompt exceeds some size) are
   * read at the highest tier a prompt within the window can reach, so a call is never under-billed.
   */
  contextWindow?: number;
}

/**
 * The price genai-prices (its bundled data, never fetched at run time) knows for a model, in
 * integer micro-dollars per million tokens; undefined when the database does not know the model or
 * lacks its input or output rate. All zeros when the database lists the model without any price
 * (how it records a free model).
 *
 * A provider the database knows (by id: "openai", "anthropic", "groq"…) is searched alone. Any
 * other provider, such as "openai-compatible", is matched by model id through the database's own
 * rules (e.g. "gpt-…" belongs to OpenAI). The cached-input rate is the database's cache-read rate,
 * else the input rate; the cache-write rate its (5-minute) cache-write rate, else the input rate;
 * the reasoning rate is its reasoning-output rate, else the output rate.
 * Prices that depend on the time of day (DeepSeek's peak hours) are read at their highest, for the
 * same reason tiers are, and so that the price does not depend on the hour the server started.
 */
export function genaiPrice(provider: string, modelId: string, options: PriceLookupOptions = {}): ModelPrice | undefined {
  const now = options.now ?? new Date();
  const providerId = provider.trim().toLowerCase();
  const known = findProvider({ providerId })?.id === providerId;
  const lookup = (timestamp: Date) => {
    try {
      return calcPrice({}, modelId, known ? { providerId, timestamp } : { timestamp });
    } catch {
      return null; // data the library cannot read counts as no price
    }
  };
  const found = lookup(now);
  if (!found) return undefined;

  // One reading per time-of-day window as well, today, so the price does not depend on the hour
  // the server started.
  const readings = [found.model_price];
  if (Array.isArray(found.model.prices)) {
    for (const { constraint } of found.model.prices) {
      if (constraint?.type !== 'time_of_date') continue;
      const at = new Date(`${now.toISOString().slice(0, 10)}T${constraint.start_time.replace(/Z$/, '')}Z`);
      const reading = Number.isNaN(at.getTime()) ? null : lookup(at);
      if (reading) readings.push(reading.model_price);
    }
  }
  const rate = (key: string): number | undefined => {
    let highest: number | undefined;
    for (const reading of readings) {
      const dollars = highestRate(reading[key], options.contextWindow);
      if (dollars !== undefined) highest = Math.max(highest ?? 0, dollars);
    }
    return highest;
  };

  // The database marks a model it knows to cost nothing with no prices at all; such a price is
  // returned (as zeros) so that the caller can tell it from an unknown one.
  if (readings.every((reading) => Object.values(reading).every((value) => value === undefined))) {
    return { ...zeroPrice('free'), source: 'genai-prices' };
  }
  const input = rate('input_mtok');
  const output = rate('output_mtok');
  if (input === undefined || output === undefined) return undefined;
  return {
    inputMicrosPerMillion: dollarsToMicros(input),
    cachedInputMicrosPerMillion: dollarsToMicros(rate('cache_read_mtok') ?? input),
    cacheWriteMicrosPerMillion: dollarsToMicros(rate('cache_write_mtok') ?? input),
    outputMicrosPerMillion: dollarsToMicros(output),
    reasoningMicrosPerMillion: dollarsToMicros(rate('output_reasoning_mtok') ?? output),
    source: 'genai-prices',
  };
}

/** A flat rate as is; a tiered one at the highest tier a prompt within the context window reaches. */
function highestRate(value: number | TieredPrices | undefined, contextWindow = Number.POSITIVE_INFINITY): number | undefined {
  if (value === undefined || typeof value === 'number') return value;
  // A tier applies once the prompt has more than `start` tokens.
  return Math.max(value.base, ...value.tiers.filter((tier) => tier.start < contextWindow).map((tier) => tier.price));
}
