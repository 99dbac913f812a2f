// Administration from the command line, for the first admin of a fresh install:
//   npm run admin -- promote <email>
// Runs against the configured database (DATABASE_URL, or the embedded one under DATA_DIR, which
// must not be in use by a running server).
import { promoteByEmail } from '../src/admin/promotion.js';
import { ConfigError, loadConfig } from '../src/config.js';
import { databaseTargetOf } from '../src/db/client.js';
import { openMigratedDatabase } from '../src/db/open-migrated.js';
import { createLogger } from '../src/logger.js';

const USAGE = 'Usage: npm run admin -- promote <email>   (built, or in the Docker image: npm run admin:prod -- promote <email>)';

async function main(args: string[]): Promise<number> {
  const [command, email, ...rest] = args;
  if (command !== 'promote' || !email || rest.length > 0) {
    console.error(USAGE);
    return 2;
  }
  const config = loadConfig();
  // Opened as the server opens it: a DATABASE_URL the server would refuse is refused the same way.
  const db = await openMigratedDatabase(databaseTargetOf(config), createLogger('warn'));
  try {
    const outcome = await promoteByEmail(db.prisma, email);
    if (outcome === 'not-found') {
      console.error(`No account with the e-mail ${email}; sign up first, then promote it.`);
      return 1;
    }
    console.log(outcome === 'promoted' ? `${email} is now an ADMIN.` : `${email} was already an ADMIN.`);
    return 0;
  } finally {
    await db.close();
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  console.error(error instanceof ConfigError || error instanceof Error ? error.message : String(error));
  process.exitCode = 1;
}
