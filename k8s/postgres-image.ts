import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

/**
 * The PostgreSQL image is pinned once, in docker-compose.yml's top-level `x-postgres-image` field,
 * and read from there at synth time: compose, the StatefulSet, the backup CronJob and the container
 * tests' stand-in all run the same server, and bumping the minor is a one-line change.
 */

export const composeFile = new URL('../docker-compose.yml', import.meta.url);
export const postgresImageField = 'x-postgres-image';

/** `postgres:16.14-bookworm`: an exact minor, optionally with a Debian suite. Never `16` alone. */
export const exactMinorPostgresImage = /^(?:[\w.-]+(?::\d+)?\/)*postgres:\d+\.\d+(?:-[a-z]+)?$/;

export class PostgresImageError extends Error {
  override name = 'PostgresImageError';
}

export function pinnedPostgresImage(file: URL = composeFile): string {
  let document: unknown;
  try {
    document = parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new PostgresImageError(
      `cannot read the PostgreSQL image pin from ${file.pathname}: ${(error as Error).message}`,
    );
  }
  const image = (document as Record<string, unknown> | null)?.[postgresImageField];
  if (typeof image !== 'string' || image.trim() === '') {
    throw new PostgresImageError(
      `${file.pathname} has no top-level ${postgresImageField} field: declare the PostgreSQL image there once ` +
        `(e.g. \`${postgresImageField}: &postgres-image postgres:16.14-bookworm\`), or set database.image in the environment`,
    );
  }
  if (!exactMinorPostgresImage.test(image)) {
    throw new PostgresImageError(
      `${postgresImageField} "${image}" in ${file.pathname} is not pinned to an exact minor such as postgres:16.14-bookworm`,
    );
  }
  return image;
}
