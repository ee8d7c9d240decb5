/**
 * Where the process is in its life: schema not yet migrated, serving, or shutting down. Only
 * main.ts (and the test harness) moves it forward; readiness and the request gate read it.
 */
export class Lifecycle {
  #migrated: boolean;
  #shuttingDown = false;

  constructor(options: { migrated?: boolean } = {}) {
    this.#migrated = options.migrated ?? false;
  }

  /** The schema is up to date: the API's tables exist. */
  get migrated(): boolean {
    return this.#migrated;
  }

  /** Readiness answers 503 from the moment shutdown begins. */
  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  markMigrated(): void {
    this.#migrated = true;
  }

  beginShutdown(): void {
    this.#shuttingDown = true;
  }
}
