import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { api } from './support/api.ts';
import { startTestApp, useTestApp } from './support/test-app.ts';

const { client, app } = useTestApp();

const unique = () => `Someone.${Math.random().toString(36).slice(2)}@Example.COM`;

describe('register', () => {
  it('when the credentials are valid, then 201 with the user, a token and its expiry', async () => {
    const email = unique();
    const res = await client.post('/api/v1/auth/register', {
      body: { email, password: 'long enough password' },
    });
    expect(res.status).toBe(201);
    expect(res.body.user.email).toBe(email.toLowerCase());
    expect(res.body.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const days = (Date.parse(res.body.expiresAt) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29.9);
    expect(days).toBeLessThanOrEqual(30);
  });

  it('stores a scrypt hash with its parameters and only a SHA-256 of the token', async () => {
    const { token, id, password } = await client.register();
    const user = await app().db.query<{ password_hash: string }>(
      'SELECT password_hash FROM users WHERE id = $1',
      [id],
    );
    const hash = user.rows[0]!.password_hash;
    expect(hash).toMatch(/^scrypt\$32768\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(hash).not.toContain(password);
    const sessions = await app().db.query<{ token_hash: Buffer }>(
      'SELECT token_hash FROM sessions WHERE user_id = $1',
      [id],
    );
    expect(sessions.rows[0]!.token_hash.equals(createHash('sha256').update(token).digest())).toBe(
      true,
    );
  });

  it('when the email exists in another case, then 409', async () => {
    const email = unique();
    await client.register(email);
    const res = await client.post('/api/v1/auth/register', {
      body: { email: email.toUpperCase(), password: 'another password' },
    });
    expect(res.status).toBe(409);
    expect(res.body.type).toMatch(/conflict/);
  });

  it.each([
    ['password too short', { email: 'a@example.com', password: 'short' }, ['password']],
    ['password too long', { email: 'a@example.com', password: 'x'.repeat(201) }, ['password']],
    ['not an email', { email: 'not-an-email', password: 'long enough password' }, ['email']],
    ['wrong types', { email: 42, password: true }, ['email', 'password']],
    [
      'unknown field',
      { email: 'a@example.com', password: 'long enough password', admin: true },
      ['admin'],
    ],
    ['missing fields', {}, ['email', 'password']],
  ])('when %s, then 400 naming each field', async (_case, body, fields) => {
    const res = await client.post('/api/v1/auth/register', { body });
    expect(res.status).toBe(400);
    expect(res.body.errors.map((e: { name: string }) => e.name).sort()).toEqual(fields);
  });
});

describe('login, me and logout', () => {
  it('when the password is right, then 200 and a new working token', async () => {
    const { email, password, id } = await client.register();
    const res = await client.post('/api/v1/auth/login', {
      body: { email: email.toUpperCase(), password },
    });
    expect(res.status).toBe(200);
    const me = await client.get('/api/v1/me', { token: res.body.token });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ id, email: email.toLowerCase() });
  });

  it('when the email is unknown or the password wrong, then the same 401 body (no account enumeration)', async () => {
    const { email } = await client.register();
    const wrongPassword = await client.post('/api/v1/auth/login', {
      body: { email, password: 'not the password' },
    });
    const unknownEmail = await client.post('/api/v1/auth/login', {
      body: { email: unique(), password: 'not the password' },
    });
    expect(wrongPassword.status).toBe(401);
    expect(unknownEmail.status).toBe(401);
    expect(wrongPassword.text).toBe(unknownEmail.text);
  });

  it.each([
    ['no Authorization header', undefined],
    ['a malformed header', 'Token abc'],
    ['an unknown token', `Bearer ${'A'.repeat(43)}`],
  ])(
    'when /me is called with %s, then 401 with WWW-Authenticate: Bearer',
    async (_case, authorization) => {
      const res = await client.get('/api/v1/me', {
        headers: authorization ? { authorization } : {},
      });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    },
  );

  it('when logged out, then the token stops working at once', async () => {
    const { token } = await client.register();
    expect((await client.post('/api/v1/auth/logout', { token })).status).toBe(204);
    expect((await client.get('/api/v1/me', { token })).status).toBe(401);
    expect((await client.post('/api/v1/auth/logout', { token })).status).toBe(401);
  });

  it('when a token has expired, then 401', async () => {
    const { token, id } = await client.register();
    await app().db.query(
      `UPDATE sessions SET expires_at = now() - interval '1 second' WHERE user_id = $1`,
      [id],
    );
    expect((await client.get('/api/v1/me', { token })).status).toBe(401);
  });
});

describe('token expiry setting', () => {
  it('when AUTH_TOKEN_TTL_SECONDS is short, then tokens expire after it', async () => {
    const shortLived = await startTestApp({ AUTH_TOKEN_TTL_SECONDS: '60' });
    try {
      const res = await api(shortLived.baseUrl).post('/api/v1/auth/register', {
        body: { email: unique(), password: 'long enough password' },
      });
      const seconds = (Date.parse(res.body.expiresAt) - Date.now()) / 1000;
      expect(seconds).toBeGreaterThan(55);
      expect(seconds).toBeLessThanOrEqual(60);
    } finally {
      await shortLived.close();
    }
  });
});
