import { join } from 'node:path';
import { expect, it } from 'vitest';
import { serveForFile } from './helpers/app.js';
import { ROOT, run } from './helpers/processes.js';

// The typed client example, as the README has it run: generated, type-checked, then against a server.
let url: URL;
serveForFile((_, address) => (url = address));

const bin = (name: string) => join(ROOT, 'node_modules', '.bin', name);
const env = { PATH: process.env.PATH };

it('generates, type-checks, streams a demo reply and makes a tool round trip with examples/typed-client', async () => {
  const generated = await run(bin('graphql-codegen'), ['--config', 'examples/typed-client/codegen.ts', '--silent'], { env });
  expect(generated.status, generated.stderr + generated.stdout).toBe(0);
  const checked = await run(bin('tsc'), ['--noEmit', '-p', 'examples/typed-client'], { env });
  expect(checked.status, checked.stdout).toBe(0);

  const { status, stdout, stderr } = await run(bin('tsx'), ['examples/typed-client/chat.ts', 'Hello from the typed client'], {
    env: { ...env, GRAPHQL_URL: url.toString() },
  });
  expect(status, stderr).toBe(0);
  expect(stdout).toContain('conversation "Hello from the typed client", reply STREAMING:');
  expect(stdout).toContain('You said: "Hello from the typed client"');
  expect(stdout).toMatch(/\[COMPLETE\] \d+ characters, \d+ tokens/);
  // The tool round trip: the demo model calls the tool offered, and answers with its result.
  expect(stdout).toContain('tool call get_time({})');
  expect(stdout).toMatch(/The tools answered: "\d{4}-\d\d-\d\dT/);
});
