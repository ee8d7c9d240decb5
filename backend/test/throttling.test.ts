import { describe, expect, it } from 'vitest';
import { clientAddressKey } from '../src/rate-limit/client-address.ts';
import { api, type Api } from './support/api.ts';
import { createTestDatabase } from './support/database.ts';
import { startBackend } from './support/processes.ts';
import { startTestApp, useTestApp } from './support/test-app.ts';

/**
 * Sign-in throttling (OWASP authentication and credential-stuffing cheat sheets): guessing is
 * throttled per address and per account, yet strangers' failures cannot lock the owner out, and
 * the limit holds across replicas because it is counted in PostgreSQL.
 */

// A limit of 3 a minute, and X-Forwarded-For trusted, so one test can be many clients.
const { client } = useTestApp({ AUTH_RATE_LIMIT_PER_MINUTE: '3', TRUST_PROXY: 'true' });

const unique = () => `owner.${Math.random().toString(36).slice(2)}@example.com`;
const password = 'the owner password';

function from(address: string, c: Api = client) {
  const headers = { 'x-forwarded-for': address };
  return {
    register: (email: string) =>
      c.post('/api/v1/auth/register', { headers, body: { email, password } }),
    login: (email: string, pass: string, deviceToken?: string) =>
      c.post('/api/v1/auth/login', {
        headers,
        body: { email, password: pass, ...(deviceToken && { deviceToken }) },
      }),
  };
}

describe('sign-in throttling', () => {
  it('when strangers fail on an account from many addresses, then strangers are refused but the owner still signs in from a known device or address', async () => {
    const email = unique();
    const registered = await from('198.51.100.7').register(email);
    expect(registered.status).toBe(201);
    const { deviceToken } = registered.body;

    // Ten wrong passwords from ten addresses: the account's count stops the guessing.
    const guesses = [];
    for (let i = 1; i <= 10; i++) {
      guesses.push((await from(`203.0.113.${i}`).login(email, 'a wrong guess!')).status);
    }
    expect(guesses).toEqual([401, 401, 429, 429, 429, 429, 429, 429, 429, 429]);
    // (The registration counted once on the account, hence two 401s before the refusals.)

    // A stranger, even with the right password, is refused while the account is under attack…
    expect((await from('192.0.2.99').login(email, password)).status).toBe(429);
    // …but the owner's device, from an address never seen, gets in…
    const onDevice = await from('192.0.2.50').login(email, password, deviceToken);
    expect(onDevice.status).toBe(200);
    expect(onDevice.body.deviceToken).toBe(deviceToken);
    // …and so does the owner from the address it signed up from, without the device token.
    const fromHome = await from('198.51.100.7').login(email, password);
    expect(fromHome.status).toBe(200);
    expect(fromHome.body.deviceToken).not.toBe(deviceToken); // a new device, remembered from now on
  });

  it('when one address tries too often, then it is refused whatever the account, with Retry-After and RateLimit headers', async () => {
    const attacker = from('203.0.113.200');
    const statuses = [];
    for (let i = 0; i < 4; i++)
      statuses.push((await attacker.login(unique(), 'a wrong guess!')).status);
    expect(statuses).toEqual([401, 401, 401, 429]);
    const refused = await attacker.login(unique(), 'a wrong guess!');
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(refused.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    expect(refused.headers.get('ratelimit-policy')).toBe('"auth";q=3;w=60');
    expect(refused.headers.get('ratelimit')).toMatch(/^"auth";r=0;t=\d+$/);
  });

  it('when a known device guesses, then it is throttled on its own', async () => {
    const email = unique();
    const { deviceToken } = (await from('198.51.100.20').register(email)).body;
    const device = from('192.0.2.20');
    const statuses = [];
    for (let i = 0; i < 4; i++)
      statuses.push((await device.login(email, 'a wrong guess!', deviceToken)).status);
    expect(statuses).toEqual([401, 401, 401, 429]);
    // Its address was not counted meanwhile: another account from it is fine.
    expect((await device.register(unique())).status).toBe(201);
  });

  it('when a sign-in succeeds, then the answer says how many attempts are left', async () => {
    const email = unique();
    const registered = await from('198.51.100.30').register(email);
    expect(registered.headers.get('ratelimit')).toMatch(/^"auth";r=2;t=\d+$/);
    const ok = await from('198.51.100.30').login(email, password);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('ratelimit-policy')).toBe('"auth";q=3;w=60');
    expect(ok.headers.get('ratelimit')).toMatch(/^"auth";r=1;t=\d+$/);
    expect(ok.headers.get('cache-control')).toBe('no-store');
  });

  it('when the addresses of one IPv6 /64 take turns, then they share one count; another /64 is not affected', async () => {
    const prefix = '2001:db8:4:5';
    const statuses = [];
    for (let i = 1; i <= 4; i++) {
      statuses.push(
        (await from(`${prefix}::${i.toString(16)}`).login(unique(), 'a wrong guess!')).status,
      );
    }
    expect(statuses).toEqual([401, 401, 401, 429]);
    expect(
      (await from(`${prefix}:ffff:ffff:ffff:ffff`).login(unique(), 'x'.repeat(10))).status,
    ).toBe(429);
    expect((await from('2001:db8:4:6::1').login(unique(), 'a wrong guess!')).status).toBe(401);
  });
});

describe('the limit across replicas', () => {
  it('when two backend processes share one database, then the sign-in limit counts across both', async () => {
    const env = {
      DATABASE_URL: await createTestDatabase(),
      AUTH_RATE_LIMIT_PER_MINUTE: '3',
      LOG_LEVEL: 'warn',
    };
    const [a, b] = await Promise.all([
      startBackend('replica a', env),
      startBackend('replica b', env),
    ]);
    try {
      const email = unique();
      const statuses = [];
      for (const replica of [a, b, a, b, a]) {
        const res = await api(replica.baseUrl).post('/api/v1/auth/login', {
          body: { email, password: 'a wrong guess!' },
        });
        statuses.push(res.status);
      }
      expect(statuses).toEqual([401, 401, 401, 429, 429]);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it('when the database is down, then sign-in answers 503 to retry (it cannot check a password without it either)', async () => {
    const app = await startTestApp({ DATABASE_CONNECT_TIMEOUT_MS: '500' });
    await app.db.end(); // the pool is gone: every query fails as if the database were away
    try {
      const res = await api(app.baseUrl).post('/api/v1/auth/login', {
        body: { email: unique(), password },
      });
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('1');
    } finally {
      await app.close().catch(() => undefined);
    }
  });
});

describe('client address keys', () => {
  it.each([
    ['192.0.2.1', 64, '192.0.2.1'],
    ['::ffff:192.0.2.1', 64, '192.0.2.1'],
    ['::ffff:c000:0201', 64, '192.0.2.1'],
    ['2001:db8:1:2:3:4:5:6', 64, '2001:db8:1:2:0:0:0:0/64'],
    ['2001:db8:1:2::', 64, '2001:db8:1:2:0:0:0:0/64'],
    ['2001:DB8:1:2::abcd', 64, '2001:db8:1:2:0:0:0:0/64'],
    ['2001:db8:1:2:3:4:5:6', 56, '2001:db8:1:0:0:0:0:0/56'],
    ['2001:db8:1:2ff:3:4:5:6', 56, '2001:db8:1:200:0:0:0:0/56'],
    ['2001:db8:1:2:3:4:5:6', 128, '2001:db8:1:2:3:4:5:6/128'],
    ['fe80::1%eth0', 64, 'fe80:0:0:0:0:0:0:0/64'],
    ['::1', 64, '0:0:0:0:0:0:0:0/64'],
    ['2001:db8::1.2.3.4', 128, '2001:db8:0:0:0:0:102:304/128'],
    ['unknown', 64, 'unknown'],
  ])('%s with /%i counts as %s', (address, bits, key) => {
    expect(clientAddressKey(address, bits)).toBe(key);
  });
});
