import { dev } from './dev.ts';
import { production } from './production.ts';
import { staging } from './staging.ts';

/** Every environment `npm run synth` writes, each to k8s/dist/<name>/. */
export const environments = [dev, staging, production] as const;
