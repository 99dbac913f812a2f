import type { Plan } from '../generated/prisma/client.js';

export type PlanQuotas = Record<Plan, number>;

/** First day of the UTC month: the key of a quota period. */
export function quotaPeriodOf(date = new Date()): Date {
  return new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1));
}
