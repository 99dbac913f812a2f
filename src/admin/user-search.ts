import { badInput } from '../errors.js';
import type { Prisma } from '../generated/prisma/client.js';

export const MAX_SEARCH_LENGTH = 100;

/** Users whose e-mail or name contains the text, in any case; everyone when it is empty. */
export function userSearchFilter(search: string | null | undefined): Prisma.UserWhereInput {
  const text = search?.trim() ?? '';
  if (text.length > MAX_SEARCH_LENGTH) throw badInput(`Search at most ${MAX_SEARCH_LENGTH} characters`, 'search');
  if (text.length === 0) return {};
  return {
    OR: [{ email: { contains: text, mode: 'insensitive' } }, { name: { contains: text, mode: 'insensitive' } }],
  };
}
