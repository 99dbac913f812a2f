import { readFileSync, writeFileSync } from 'node:fs';
import { relative } from 'node:path';

/**
 * Writes a generated file, or with --check on the command line fails (exit 1) when the committed
 * file differs from what would be generated, naming the command that regenerates it.
 */
export function writeOrCheckGenerated(file: string, generated: string, regenerate: string): void {
  const name = relative(process.cwd(), file);
  if (process.argv.includes('--check')) {
    if (readFileSync(file, 'utf8') !== generated) {
      console.error(`${name} is stale: run \`${regenerate}\` and commit the result.`);
      process.exit(1);
    }
    console.log(`${name} is up to date.`);
  } else {
    writeFileSync(file, generated);
    console.log(`Wrote ${file}`);
  }
}
