const said = new Set<string>();

/**
 * Returns `condition` for skipIf, after printing once, when it holds, why the tests it guards are
 * skipped: a skip is otherwise silent, and a run without PostgreSQL or Redis looks complete.
 */
export function skipping(condition: unknown, reason: string): boolean {
  const skip = Boolean(condition);
  if (skip && !said.has(reason)) {
    said.add(reason);
    console.log(`skipped: ${reason}`);
  }
  return skip;
}
