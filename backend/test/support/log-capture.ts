import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/logger.ts';

/** The app's logger (same redaction and format), writing lines a test can read. */
export function capturingLogger(level = 'info'): {
  logger: Logger;
  lines: () => Record<string, unknown>[];
  text: () => string;
} {
  const raw: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      raw.push(chunk.toString());
      done();
    },
  });
  return {
    logger: createLogger(level, sink),
    lines: () => raw.map((line) => JSON.parse(line) as Record<string, unknown>),
    text: () => raw.join(''),
  };
}
