import { badInput } from '../../errors.js';
import type { Upload } from '../../chat/attachments.js';
import { builder } from '../builder.js';

builder.scalarType('DateTime', {
  description: 'An instant in UTC, as an ISO-8601 string.',
  serialize: (value) => value.toISOString(),
  parseValue: (value) => {
    const date = typeof value === 'string' ? new Date(value) : new Date(NaN);
    if (Number.isNaN(date.getTime())) throw badInput('DateTime must be an ISO-8601 string');
    return date;
  },
});

builder.scalarType('Date', {
  description: 'A calendar day in UTC, as YYYY-MM-DD.',
  serialize: (value) => value.toISOString().slice(0, 10),
  parseValue: (value) => {
    if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(value)) throw badInput('Date must be YYYY-MM-DD');
    const date = new Date(`${value}T00:00:00.000Z`);
    if (Number.isNaN(date.getTime()) || date.toISOString().slice(0, 10) !== value) throw badInput('Date is not a real day');
    return date;
  },
});

// GraphQL's Int is 32-bit; token and micro-dollar totals outgrow it. Still a JSON number.
builder.scalarType('SafeInt', {
  description: 'An integer up to 2^53 - 1, serialized as a JSON number (used for token counts and micro-dollars).',
  serialize: (value) => {
    const number = Number(value);
    if (!Number.isSafeInteger(number)) throw new Error('SafeInt out of range');
    return number;
  },
  parseValue: (value) => {
    if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw badInput('Expected a safe integer');
    return value;
  },
});

// A file of a GraphQL multipart request (Yoga puts it in the variables); input only.
builder.scalarType('File', {
  description: 'A file sent as a GraphQL multipart request (https://github.com/jaydenseric/graphql-multipart-request-spec).',
  serialize: () => {
    throw new Error('File is an input type');
  },
  parseValue: (value) => {
    const file = value as Partial<Upload> | null;
    if (typeof file?.size !== 'number' || typeof file.arrayBuffer !== 'function') throw badInput('File must be a file of a multipart request');
    return file as Upload;
  },
});

// Any JSON value, passed through as it is: audit details, and a response format's JSON Schema
// (checked where it is used; the size and depth of variables are bounded by the request limits).
builder.scalarType('JSON', {
  description: 'Any JSON value.',
  serialize: (value) => value,
  parseValue: (value) => value,
});
