import { defineConfig } from 'prisma/config';

// The CLI only needs the schema location here: the server connects through driver adapters
// (src/db/client.ts) and applies migrations with its own migrator (src/db/migrate.ts).
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: process.env.DATABASE_URL ?? 'postgresql://localhost:5432/switchboard' },
});
