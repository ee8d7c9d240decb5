import { pino, type Logger } from 'pino';

export type { Logger };

/** Paths that must never reach a log line, whatever logs them. */
const redact = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["idempotency-key"]',
  'res.headers["set-cookie"]',
  '*.password',
  '*.token',
  '*.connectionString',
  '*.DATABASE_URL',
];

export function createLogger(level: string): Logger {
  return pino({
    level,
    redact: { paths: redact, censor: '[redacted]' },
    base: { service: 'tasks-backend' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}
