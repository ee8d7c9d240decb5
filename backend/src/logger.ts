import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/** Paths that must never reach a log line, whatever logs them. */
const redact = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["idempotency-key"]',
  'res.headers["set-cookie"]',
  '*.password',
  '*.token',
  '*.deviceToken',
  '*.currentPassword',
  '*.newPassword',
  '*.connectionString',
  '*.DATABASE_URL',
];

/**
 * JSON lines to stdout, written asynchronously: a request does not wait for write(2), and lines
 * logged while a write is in flight go out together in the next one (the cost is measured in the
 * README). Nothing waits for a buffer to fill (minLength 0), so a quiet process still logs at once.
 * On every way out that runs JavaScript (process.exit from a shutdown, a signal or a fatal error,
 * or the event loop running dry) pino's exit hook writes what is still pending synchronously;
 * backend/test/shutdown.test.ts checks the last lines before SIGTERM and before a crash. Only a
 * SIGKILL or the OOM killer can lose the lines of the last moment. `destination` is for tests.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    redact: { paths: redact, censor: '[redacted]' },
    base: { service: 'tasks-backend' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  return pino(options, destination ?? pino.destination({ dest: 1, sync: false, minLength: 0 }));
}
