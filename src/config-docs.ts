// The configuration reference, read from the config schema: the tables of docs/configuration.md
// and the variables `--help` lists. Descriptions are written in light Markdown (code spans and
// links), which the plain-text rendering strips.
import { z } from 'zod';
import { CONFIG_GROUPS } from './config.js';

interface VariableDoc {
  name: string;
  /** The value used when the variable is unset, as it would be written in the environment. */
  default?: string;
  /** What an unset variable means, when there is no literal default. */
  unset?: string;
  accepts: string;
  description: string;
}

interface VariableGroup {
  title: string;
  variables: VariableDoc[];
}

/** A variable's JSON Schema, with the metadata the config schema gives it (zod copies it in, the outer layer winning). */
type JsonSchema = {
  description?: string;
  accepts?: string;
  unset?: string;
  type?: string;
  enum?: unknown[];
  default?: unknown;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minLength?: number;
  pattern?: string;
  format?: string;
};

export function configReference(): VariableGroup[] {
  return CONFIG_GROUPS.map(({ title, shape }) => ({
    title,
    variables: Object.entries(shape).map(([name, schema]) => variableDoc(name, schema)),
  }));
}

function variableDoc(name: string, schema: z.ZodType): VariableDoc {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  if (!json.description) throw new Error(`${name} has no description in the config schema`);
  return {
    name,
    default: json.default === undefined ? undefined : String(json.default),
    unset: json.unset,
    accepts: json.accepts ?? acceptsFromJsonSchema(json),
    description: json.description,
  };
}

function acceptsFromJsonSchema(json: JsonSchema): string {
  if (json.enum) return `one of ${json.enum.map((value) => `\`${String(value)}\``).join(', ')}`;
  if (json.type === 'integer' || json.type === 'number') {
    const kind = json.type === 'integer' ? 'an integer' : 'a number';
    // z.int() bounds every integer by the safe range: not worth saying.
    const max = json.maximum !== undefined && json.maximum < Number.MAX_SAFE_INTEGER ? json.maximum : undefined;
    const min = json.minimum !== undefined && json.minimum > Number.MIN_SAFE_INTEGER ? json.minimum : undefined;
    const positive = json.exclusiveMinimum === 0 || (json.type === 'integer' && min === 1);
    if (min !== undefined && max !== undefined) return `${kind} from ${min} to ${max}`;
    const base = positive ? `a positive ${json.type}` : min === 0 ? `a non-negative ${json.type}` : min !== undefined ? `${kind} from ${min}` : kind;
    return max !== undefined ? `${base}, at most ${max}` : base;
  }
  if (json.format === 'uri') return 'a URL';
  if (json.format === 'starts_with' && json.pattern) return `text starting with \`${json.pattern.replace(/^\^|\.\*$/g, '')}\``;
  if (json.minLength !== undefined && json.minLength > 1) return `text of at least ${json.minLength} characters`;
  return 'text';
}

const BEGIN = '<!-- BEGIN generated from src/config.ts by `npm run docs:config`: edit the descriptions there -->';
const END = '<!-- END generated -->';

/** The configuration file with its generated part rendered afresh, the hand-written rest kept. */
export function withGeneratedReference(file: string): string {
  const begin = file.indexOf(BEGIN);
  const end = file.indexOf(END);
  if (begin < 0 || end < begin) throw new Error(`the file has no "${BEGIN}" … "${END}" markers`);
  return `${file.slice(0, begin)}${BEGIN}\n\n${configMarkdown()}\n${file.slice(end)}`;
}

function configMarkdown(): string {
  const cell = (text: string) => text.replaceAll('|', '\\|');
  return configReference()
    .map(({ title, variables }) => {
      const rows = variables.map((v) => {
        const fallback = v.default !== undefined ? `\`${v.default}\`` : (v.unset ?? '–');
        const description = v.default !== undefined && v.unset ? `${v.description}. Unset: ${v.unset}` : v.description;
        return `| \`${v.name}\` | ${cell(fallback)} | ${cell(v.accepts)} | ${cell(description)} |`;
      });
      return [`### ${title}`, '', '| variable | default | accepts | meaning |', '|---|---|---|---|', ...rows, ''].join('\n');
    })
    .join('\n');
}

/** Usage and every variable with its default, as plain text for a terminal. */
export function configHelpText(): string {
  const lines = [
    'Usage: npm start [-- --help]',
    '       node dist/src/main.js [--help]',
    '',
    'Starts the Switchboard GraphQL server on http://HOST:PORT/graphql. It is configured by',
    'environment variables only (npm start also reads a .env file in the working directory;',
    'variables set in the shell win). Every invalid variable is reported at once, and the',
    'process exits 1. The reference with examples: docs/configuration.md.',
  ];
  for (const { title, variables } of configReference()) {
    lines.push('', `${title}:`);
    for (const v of variables) {
      lines.push(v.default !== undefined ? `  ${v.name}=${v.default}` : `  ${v.name}`);
      const unset = v.unset ? ` Unset: ${v.unset}.` : '';
      const text = plain(`${v.description}. Accepts ${v.accepts}.${unset}`);
      lines.push(...wrap(text, 92).map((line) => `      ${line}`));
    }
  }
  return `${lines.join('\n')}\n`;
}

/** Light Markdown as plain text: code spans lose their backticks, links become "text (docs/file)". */
function plain(text: string): string {
  return text
    .replace(/\[([^\]]+)\]\(([^)]+)\)/g, (_, label: string, target: string) =>
      `${label} (docs/${target.startsWith('#') ? `configuration.md${target}` : target})`)
    .replaceAll('`', '');
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  return line ? [...lines, line] : lines;
}
