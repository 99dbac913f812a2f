import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PGlite } from '@electric-sql/pglite';
import { PGLITE_EXTENSIONS } from '../src/db/client.js';
import { migrate, MigrationError, readDatabaseFunctions, readMigrations, type SqlConnection } from '../src/db/migrate.js';
import * as enums from '../src/generated/prisma/enums.js';
import { getDatamodel } from '../src/generated/pothos-types.js';
import { startTestApp, type TestApp } from './helpers/app.js';

let t: TestApp;
const sql = <Row = Record<string, unknown>>(query: string, params?: unknown[]) =>
  t.app.db.withConnection((conn) => conn.query<Row>(query, params));

beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.stop());

const { models } = getDatamodel().datamodel;
const schemaText = readFileSync(join(import.meta.dirname, '..', 'prisma', 'schema.prisma'), 'utf8');

/** Column types Prisma maps each scalar to on PostgreSQL (with the native types this schema uses). */
const columnTypes: Record<string, string[]> = {
  String: ['text', 'uuid'],
  Int: ['integer'],
  BigInt: ['bigint'],
  Boolean: ['boolean'],
  DateTime: ['timestamp without time zone', 'date'],
  Json: ['jsonb'],
  Bytes: ['bytea'],
};

/** The `onDelete` a relation field declares in schema.prisma, as PostgreSQL names the rule. */
function declaredDeleteRule(model: string, field: string): string {
  const block = new RegExp(`model ${model} \\{([\\s\\S]*?)\\n\\}`).exec(schemaText)?.[1] ?? '';
  const line = block.split('\n').find((l) => l.trim().startsWith(`${field} `)) ?? '';
  const rule = /onDelete: (\w+)/.exec(line)?.[1] ?? 'NoAction';
  return { Cascade: 'CASCADE', Restrict: 'RESTRICT', SetNull: 'SET NULL', NoAction: 'NO ACTION' }[rule] ?? rule;
}

/** `@@index([a, b])` lines per model, read from schema.prisma (the generated datamodel omits them). */
function declaredIndexes(): Array<{ model: string; columns: string[] }> {
  const result: Array<{ model: string; columns: string[] }> = [];
  for (const match of schemaText.matchAll(/model (\w+) \{([\s\S]*?)\n\}/g)) {
    for (const index of match[2]!.matchAll(/@@index\(\[([^\]]+)\]/g)) {
      result.push({ model: match[1]!, columns: index[1]!.split(',').map((c) => c.trim()) });
    }
  }
  return result;
}

interface IndexRow { table: string; unique: boolean; primary: boolean; columns: string[] }

async function databaseIndexes(): Promise<IndexRow[]> {
  const rows = await sql<{ table: string; unique: boolean; primary: boolean; columns: string | string[] }>(`
    SELECT t.relname AS "table", ix.indisunique AS "unique", ix.indisprimary AS "primary",
           array_agg(a.attname::text ORDER BY array_position(ix.indkey::int2[], a.attnum)) AS columns
    FROM pg_index ix
    JOIN pg_class i ON i.oid = ix.indexrelid
    JOIN pg_class t ON t.oid = ix.indrelid
    JOIN pg_namespace n ON n.oid = t.relnamespace
    JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY(ix.indkey)
    WHERE n.nspname = current_schema()
    GROUP BY t.relname, i.relname, ix.indisunique, ix.indisprimary`);
  return rows.map((r) => ({ ...r, columns: Array.isArray(r.columns) ? r.columns : r.columns.replace(/[{}]/g, '').split(',') }));
}

describe('the migrated database agrees with schema.prisma', () => {
  it('has every model as a table with exactly its columns, types and nullability', async () => {
    const columns = await sql<{ table_name: string; column_name: string; data_type: string; udt_name: string; is_nullable: string }>(
      `SELECT table_name, column_name, data_type, udt_name, is_nullable FROM information_schema.columns
       WHERE table_schema = current_schema() AND table_name <> '_prisma_migrations'`,
    );
    const tables = new Set(columns.map((c) => c.table_name));
    expect([...tables].sort()).toEqual(Object.keys(models).sort());

    for (const [model, { fields }] of Object.entries(models)) {
      const scalarFields = fields.filter((f) => f.kind === 'scalar' || f.kind === 'enum');
      const tableColumns = columns.filter((c) => c.table_name === model);
      expect(tableColumns.map((c) => c.column_name).sort(), model).toEqual(scalarFields.map((f) => f.name).sort());
      for (const field of scalarFields) {
        const column = tableColumns.find((c) => c.column_name === field.name)!;
        const where = `${model}.${field.name}`;
        expect(column.is_nullable === 'NO', where).toBe(field.isRequired);
        // PostgreSQL names an array type after its element type with a leading underscore.
        if (field.kind === 'enum') expect(column.udt_name, where).toBe(field.isList ? `_${field.type}` : field.type);
        else expect(columnTypes[field.type], where).toContain(column.data_type);
      }
    }
  });

  it('has every enum with exactly its values', async () => {
    const rows = await sql<{ name: string; value: string }>(
      `SELECT t.typname AS name, e.enumlabel AS value FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid ORDER BY e.enumsortorder`,
    );
    for (const [name, values] of Object.entries(enums)) {
      expect(rows.filter((r) => r.name === name).map((r) => r.value), name).toEqual(Object.values(values));
    }
  });

  it('has the primary keys, unique constraints and indexes the schema declares', async () => {
    const indexes = await databaseIndexes();
    const has = (table: string, columns: readonly string[], kind: 'primary' | 'unique' | 'any') =>
      indexes.some(
        (i) => i.table === table && i.columns.join() === columns.join() && (kind === 'any' || (kind === 'primary' ? i.primary : i.unique)),
      );
    for (const [model, { fields, primaryKey, uniqueIndexes }] of Object.entries(models)) {
      const pk = primaryKey?.fields ?? fields.filter((f) => f.isId).map((f) => f.name);
      expect(has(model, pk, 'primary'), `${model} primary key ${pk}`).toBe(true);
      for (const field of fields.filter((f) => f.isUnique)) {
        expect(has(model, [field.name], 'unique'), `${model}.${field.name} unique`).toBe(true);
      }
      for (const unique of uniqueIndexes) {
        expect(has(model, unique.fields, 'unique'), `${model} unique ${unique.fields}`).toBe(true);
      }
    }
    for (const { model, columns } of declaredIndexes()) {
      expect(has(model, columns, 'any'), `${model} index ${columns}`).toBe(true);
    }
  });

  it('has a foreign key for every relation', async () => {
    const fks = await sql<{ table_name: string; column_name: string; foreign_table: string; delete_rule: string }>(`
      SELECT kcu.table_name, kcu.column_name, ccu.table_name AS foreign_table, rc.delete_rule
      FROM information_schema.referential_constraints rc
      JOIN information_schema.key_column_usage kcu ON kcu.constraint_name = rc.constraint_name
      JOIN information_schema.constraint_column_usage ccu ON ccu.constraint_name = rc.constraint_name
      WHERE kcu.table_schema = current_schema()`);
    const relations = Object.entries(models).flatMap(([model, { fields }]) =>
      fields.filter((f) => f.kind === 'object' && f.relationFromFields?.length).map((f) => ({ model, field: f })),
    );
    expect(fks).toHaveLength(relations.length);
    for (const { model, field } of relations) {
      const fk = fks.find((f) => f.table_name === model && f.column_name === field.relationFromFields![0]);
      expect(fk?.foreign_table, `${model}.${field.name}`).toBe(field.type);
      expect(fk?.delete_rule, `${model}.${field.name}`).toBe(declaredDeleteRule(model, field.name));
    }
  });

  it('reads and writes every model through the Prisma client', async () => {
    const prisma = t.app.db.prisma;
    const user = await prisma.user.create({ data: { email: `all-models-${Date.now()}@example.com`, name: 'All' } });
    const conversation = await prisma.conversation.create({ data: { userId: user.id, title: 't', model: 'm' } });
    await prisma.message.create({
      data: { conversationId: conversation.id, userId: user.id, role: 'USER', content: 'hi', status: 'COMPLETE', costMicros: 12n },
    });
    await prisma.refreshToken.create({
      data: { userId: user.id, familyId: user.id, tokenHash: `h-${user.id}`, expiresAt: new Date() },
    });
    await prisma.apiKey.create({ data: { userId: user.id, name: 'k', prefix: 'sk_x', secretHash: `s-${user.id}` } });
    await prisma.usageDaily.create({ data: { userId: user.id, day: new Date('2026-01-02'), model: 'm', totalTokens: 5n } });
    await prisma.quotaPeriod.create({ data: { userId: user.id, period: new Date('2026-01-01'), usedTokens: 5n } });
    await prisma.creditLedgerEntry.create({
      data: { userId: user.id, kind: 'PURCHASE', amountMicros: 100n, balanceAfterMicros: 100n, reason: 'test' },
    });
    await prisma.processedStripeEvent.create({ data: { id: `evt_${user.id}`, type: 'checkout.session.completed' } });
    // Settled already: the sweeps of other test servers on this database leave it alone.
    await prisma.reservation.create({
      data: { userId: user.id, model: 'm', period: new Date('2026-01-01'), price: {}, leaseExpiresAt: new Date(), settledAt: new Date() },
    });

    const loaded = await prisma.user.findUniqueOrThrow({
      where: { id: user.id },
      include: {
        conversations: { include: { messages: true } },
        refreshTokens: true,
        apiKeys: true,
        usageDays: true,
        quotaPeriods: true,
        creditEntries: true,
        messages: true,
        reservations: true,
      },
    });
    expect(loaded.conversations[0]?.messages[0]?.costMicros).toBe(12n);
    expect(loaded.usageDays[0]?.day.toISOString().slice(0, 10)).toBe('2026-01-02');
    expect(
      [loaded.refreshTokens, loaded.apiKeys, loaded.quotaPeriods, loaded.creditEntries, loaded.messages, loaded.reservations].map((l) => l.length),
    ).toEqual([1, 1, 1, 1, 1, 1]);
    // What a user was charged and paid is never deleted with them: users are deactivated instead.
    await expect(prisma.user.delete({ where: { id: user.id } })).rejects.toThrow();
    expect(await prisma.creditLedgerEntry.count({ where: { userId: user.id } })).toBe(1);
  });
});

describe('the migrator', () => {
  const withConn = <T>(work: (conn: SqlConnection) => Promise<T>) => t.app.db.withConnection(work);

  it('records migrations the way Prisma does, with the sha256 of each file', async () => {
    const rows = await sql<{ migration_name: string; checksum: string; finished_at: Date | null }>(
      'SELECT migration_name, checksum, finished_at FROM "_prisma_migrations"',
    );
    for (const migration of readMigrations()) {
      const row = rows.find((r) => r.migration_name === migration.name);
      expect(row?.finished_at).toBeTruthy();
      expect(row?.checksum).toBe(createHash('sha256').update(migration.sql).digest('hex'));
    }
  });

  it('applies nothing the second time', async () => {
    expect(await withConn((conn) => migrate(conn))).toEqual([]);
  });

  it('refuses to start when an applied migration was edited', async () => {
    const edited = readMigrations().map((m, i) => (i === 0 ? { ...m, checksum: 'f'.repeat(64) } : m));
    await expect(withConn((conn) => migrate(conn, edited))).rejects.toThrow(/modified after it was applied/);
  });

  it('rolls a failing migration back completely and does not record it', async () => {
    const failing = { name: '29991231000000_failing', checksum: 'a'.repeat(64), sql: 'CREATE TABLE "Half" (id int); SELECT 1/0;' };
    await expect(withConn((conn) => migrate(conn, [...readMigrations(), failing]))).rejects.toThrow(MigrationError);
    const half = await sql(`SELECT 1 FROM information_schema.tables WHERE table_name = 'Half'`);
    expect(half).toHaveLength(0);
    const recorded = await sql(`SELECT 1 FROM "_prisma_migrations" WHERE migration_name = $1`, [failing.name]);
    expect(recorded).toHaveLength(0);
  });
});

/** Each function's body as its source file has it (between the $$ quotes), by name. */
function functionSources(): Map<string, string> {
  return new Map(
    readDatabaseFunctions().map((fn) => {
      const name = /CREATE OR REPLACE FUNCTION "(\w+)"\(/.exec(fn.sql)?.[1];
      const body = /\$\$([\s\S]*)\$\$/.exec(fn.sql)?.[1];
      expect(name, `${fn.name}.sql creates one function named after its file`).toBe(fn.name);
      return [fn.name, body ?? ''];
    }),
  );
}

async function databaseFunctions(query: SqlConnection['query']): Promise<Map<string, string>> {
  const rows = await query<{ name: string; source: string }>(`
    SELECT p.proname AS name, p.prosrc AS source FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = current_schema() AND p.prokind = 'f'
      -- An extension's own functions (pg_trgm's) are not ours.
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')`);
  return new Map(rows.map((r) => [r.name, r.source]));
}

describe('the database functions', () => {
  it('are exactly what prisma/sql says, no more and no fewer', async () => {
    const inDatabase = await t.app.db.withConnection((conn) => databaseFunctions(conn.query.bind(conn)));
    expect(inDatabase).toEqual(functionSources());
  });

  it('are brought up to the files from the state before the last migration', async () => {
    const migrations = readMigrations();
    const before = migrations.slice(0, -1);
    const pglite = await PGlite.create('memory://', { extensions: PGLITE_EXTENSIONS });
    try {
      const conn: SqlConnection = {
        query: async (sql, params) => (await pglite.query(sql, params as unknown[])).rows as never,
        exec: async (sql) => void (await pglite.exec(sql)),
      };
      // The earlier state: its migrations, and the functions as those migrations left them.
      await migrate(conn, before, []);
      expect(await migrate(conn)).toEqual(migrations.slice(before.length).map((m) => m.name));
      expect(await databaseFunctions(conn.query)).toEqual(functionSources());
    } finally {
      await pglite.close();
    }
  });
});
