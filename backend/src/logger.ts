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

/** JSON lines to stdout (or to `destination`, for tests that read them). */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    redact: { paths: redact, censor: '[redacted]' },
    base: { service: 'tasks-backend' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  return destination ? pino(options, destination) : pino(options);
}
