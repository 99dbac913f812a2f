import { z } from 'zod';
import { parseJsonSetting } from '../json-setting.js';

export type PaidPlan = 'PRO' | 'TEAM';

/** What a Checkout payment buys: credits in micro-dollars, for a price in the currency's minor unit. */
export interface CreditPack {
  id: string;
  name: string;
  creditsMicros: number;
  priceCents: number;
  currency: string;
}

const packSchema = z.object({
  id: z.string().regex(/^[a-z0-9_-]{1,40}$/, 'must be 1 to 40 of a-z, 0-9, _ and -'),
  name: z.string().min(1).max(100),
  creditsMicros: z.number().int().positive().max(1e12),
  priceCents: z.number().int().min(50),
  currency: z.string().regex(/^[a-z]{3}$/, 'must be a lower-case ISO currency code').default('usd'),
});

export const DEFAULT_CREDIT_PACKS: CreditPack[] = [
  { id: 'credits-5', name: '$5 of credits', creditsMicros: 5_000_000, priceCents: 500, currency: 'usd' },
  { id: 'credits-20', name: '$20 of credits', creditsMicros: 20_000_000, priceCents: 2000, currency: 'usd' },
  { id: 'credits-100', name: '$100 of credits', creditsMicros: 100_000_000, priceCents: 10000, currency: 'usd' },
];

/** Parses CREDIT_PACKS_JSON; undefined when unset, throws a readable error when malformed. */
export function creditPacksFromJson(json: string | undefined): CreditPack[] | undefined {
  if (!json) return undefined;
  const packs = parseJsonSetting(json, z.array(packSchema).min(1));
  if (new Set(packs.map((p) => p.id)).size !== packs.length) throw new Error('pack ids must be unique');
  return packs;
}
