// A real OpenID provider for the single sign-on tests: oidc-provider (certified), on
// 127.0.0.1, configured by the JSON in SSO_TEST_CONFIG (written by tests/sso/provider.py):
//   {port, clients: [{client_id, client_secret, redirect_uris}], accounts: {sub: claims},
//    conformIdTokenClaims}
// or, when SSO_TEST_CONFIG_FILE is set, by the same JSON in that file (the benchmark's
// thousands of accounts would not fit in one environment variable).
//
// Sign-in is a plain form with no password (GET/POST /interaction/:uid/login, field
// `account`), so tests drive it with plain HTTP or a browser; consent is implied for the
// registered clients, as a university does for its own applications.
//
// POST /__test__/tamper {claims, wrongKey} changes the ID token of the NEXT token
// response: claims merged in (null deletes one), signed again with the provider's own
// key, or with wrongKey a different key under the same key id. The app under test gets it
// from the real token endpoint, exactly as from a provider that misbehaves.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

import * as jose from 'jose';
import Provider from 'oidc-provider';

const config = JSON.parse(
  process.env.SSO_TEST_CONFIG_FILE
    ? readFileSync(process.env.SSO_TEST_CONFIG_FILE, 'utf8')
    : process.env.SSO_TEST_CONFIG,
);
const issuer = `http://127.0.0.1:${config.port}`;

const kid = 'test-key-1';
const signingKey = await jose.generateKeyPair('RS256', { extractable: true });
const otherKey = await jose.generateKeyPair('RS256', { extractable: true });
const privateJwk = { ...(await jose.exportJWK(signingKey.privateKey)), kid, alg: 'RS256', use: 'sig' };

const accounts = config.accounts;
let tamper = null;

const provider = new Provider(issuer, {
  clients: config.clients.map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    redirect_uris: c.redirect_uris,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  })),
  jwks: { keys: [privateJwk] },
  cookies: { keys: ['sso-test-cookie-key'] },
  // Every client must use PKCE, so a client that forgot it fails here.
  pkce: { required: () => true },
  conformIdTokenClaims: config.conformIdTokenClaims ?? false,
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username', 'upn', 'groups', 'role'],
    email: ['email', 'email_verified'],
  },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, sub) {
    if (!Object.hasOwn(accounts, sub)) return undefined;
    return { accountId: sub, claims: async () => ({ sub, ...accounts[sub] }) };
  },
  // First-party clients: no consent screen (oidc-provider's documented recipe).
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid profile email');
    await grant.save();
    return grant;
  },
});

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
}

async function retamper(idToken) {
  const { claims, wrongKey } = tamper;
  tamper = null;
  const payload = { ...jose.decodeJwt(idToken) };
  for (const [name, value] of Object.entries(claims ?? {})) {
    if (value === null) delete payload[name];
    else payload[name] = value;
  }
  const header = jose.decodeProtectedHeader(idToken);
  return new jose.SignJWT(payload)
    .setProtectedHeader(header)
    .sign(wrongKey ? otherKey.privateKey : signingKey.privateKey);
}

provider.use(async (ctx, next) => {
  const interaction = ctx.path.match(/^\/interaction\/([^/]+)(\/login|\/abort)?$/);
  if (interaction) {
    const [, uid, action] = interaction;
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (details.uid !== uid) ctx.throw(400, 'interaction mismatch');
    if (ctx.method === 'GET' && !action) {
      ctx.type = 'html';
      ctx.body = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Test university sign-in</title></head>
<body><h1>Test university sign-in</h1>
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<label for="account">Account</label> <input id="account" name="account" autofocus>
<button type="submit">Sign in</button></form>
<form method="post" action="/interaction/${escapeHtml(uid)}/abort"><button type="submit">Cancel</button></form>
</body></html>`;
      return;
    }
    if (ctx.method === 'POST' && action === '/login') {
      const account = (await readForm(ctx.req)).get('account') ?? '';
      if (!Object.hasOwn(accounts, account)) {
        ctx.status = 400;
        ctx.body = `no such test account: ${escapeHtml(account)}`;
        return;
      }
      ctx.respond = false;
      await provider.interactionFinished(ctx.req, ctx.res, { login: { accountId: account } }, {
        mergeWithLastSubmission: false,
      });
      return;
    }
    if (ctx.method === 'POST' && action === '/abort') {
      ctx.respond = false;
      await provider.interactionFinished(ctx.req, ctx.res, {
        error: 'access_denied',
        error_description: 'End-User aborted interaction',
      }, { mergeWithLastSubmission: false });
      return;
    }
    ctx.throw(405);
  }
  if (ctx.path === '/__test__/tamper' && ctx.method === 'POST') {
    tamper = await readJson(ctx.req);
    ctx.status = 204;
    return;
  }
  await next();
  if (ctx.path === '/token' && tamper && ctx.status === 200 && ctx.body?.id_token) {
    ctx.body = { ...ctx.body, id_token: await retamper(ctx.body.id_token) };
  }
});

const server = createServer(provider.callback());
server.listen(config.port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
