import { apiDocument } from './app.ts';
import { loadConfig } from './config.ts';

/** `npm run openapi`: the document the server serves at /api/openapi.json, on stdout (for client
 * generators and the API linter), without starting anything. */
const { version } = loadConfig({ APP_VERSION: process.env['APP_VERSION'] });
process.stdout.write(`${JSON.stringify(apiDocument(version ?? 'unversioned'), null, 2)}\n`);
