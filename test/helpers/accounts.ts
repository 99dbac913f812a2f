import { RegisterDocument } from './documents.js';
import { expectData, STRONG_PASSWORD, uniqueEmail, type TestApp } from './app.js';

/** Registers a fresh user (each test makes its own) and returns its session. */
export async function registerUser(t: TestApp, name = 'Test User') {
  const email = uniqueEmail();
  const data = expectData(await t.execute(RegisterDocument, { input: { email, password: STRONG_PASSWORD, name } }));
  return { ...data.register, email, password: STRONG_PASSWORD };
}
