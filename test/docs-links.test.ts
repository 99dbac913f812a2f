import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { expect, it } from 'vitest';
import { ROOT } from './helpers/processes.js';

// The README and docs/ link to each other's sections: a moved file or a renamed heading must not
// leave a reader at a dead link.
const pages = ['README.md', ...readdirSync(join(ROOT, 'docs')).map((name) => join('docs', name))].map((file) => join(ROOT, file));

/** The anchor GitHub gives a heading. */
const anchor = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');

const withoutCode = (text: string) => text.replace(/```[\s\S]*?```/g, '');
const anchorsOf = (file: string) => new Set([...withoutCode(readFileSync(file, 'utf8')).matchAll(/^#+ (.*)$/gm)].map((m) => anchor(m[1]!)));

it('every relative link of the README and docs/ reaches an existing file and heading', () => {
  const dead: string[] = [];
  for (const page of pages) {
    for (const [, target] of readFileSync(page, 'utf8').matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target!)) continue;
      const [path, hash] = target!.split('#') as [string, string | undefined];
      const file = path ? join(dirname(page), path) : page;
      const where = `${relative(ROOT, page)}: ${target}`;
      if (!existsSync(file)) dead.push(where);
      else if (hash && file.endsWith('.md') && !anchorsOf(file).has(hash)) dead.push(where);
    }
  }
  expect(dead).toEqual([]);
});
