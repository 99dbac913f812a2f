// Generates what the code imports but git does not hold: the Prisma client and Pothos types
// (prisma generate), and the typed test documents (graphql-codegen, when dev tools are installed).
//
// Offline, `prisma generate` tries to download a schema-engine binary that generate never
// executes; when no engine is installed we point PRISMA_SCHEMA_ENGINE_BINARY at an existing
// executable so generation works. With network access nothing changes.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const bin = (name) => join(root, 'node_modules', '.bin', name);

function run(command, args, env = process.env) {
  const result = spawnSync(command, args, { stdio: 'inherit', env, cwd: root });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

if (!existsSync(bin('prisma'))) {
  console.log('generate: prisma CLI not installed (production install); using the client built earlier');
  process.exit(0);
}
const env = { ...process.env };
const enginesDir = join(root, 'node_modules', '@prisma', 'engines');
const hasEngine = existsSync(enginesDir) && readdirSync(enginesDir).some((f) => f.startsWith('schema-engine'));
if (!hasEngine && !env.PRISMA_SCHEMA_ENGINE_BINARY) env.PRISMA_SCHEMA_ENGINE_BINARY = process.execPath;
run(bin('prisma'), ['generate'], env);

// The typed documents of the tests, then those of the typed client example.
for (const config of ['codegen.ts', 'examples/typed-client/codegen.ts']) {
  if (existsSync(bin('graphql-codegen')) && existsSync(join(root, config))) {
    run(bin('graphql-codegen'), ['--config', config, '--silent']);
  }
}
