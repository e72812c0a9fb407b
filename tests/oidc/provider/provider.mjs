// The OpenID Provider of gpuhub's tests: oidc-provider with its own login and
// consent pages and a test-control API under /test/, configured from the
// environment (README.md beside this file lists the variables).
import { generateKeyPairSync, randomBytes, timingSafeEqual } from 'node:crypto';

import Provider from 'oidc-provider';

const MAX_BODY = 64 * 1024; // forms and control requests are small

function fail(message) {
  console.error(`ERROR: ${message}`);
  process.exit(2);
}

function required(name) {
  const value = process.env[name];
  if (!value) fail(`${name} is not set`);
  return value;
}

function isStringList(value) {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}

// IDP_USERS: {"<login id>": {"password": "...", "preferred_username": "...",
// "name": "...", "email": "...", "groups": ["..."]}}; the login id is the sub.
function parseUsers(text) {
  let users;
  try {
    users = JSON.parse(text);
  } catch (err) {
    fail(`IDP_USERS is not JSON: ${err.message}`);
  }
  if (users === null || typeof users !== 'object' || Array.isArray(users)) fail('IDP_USERS must be a JSON object');
  const known = new Set(['password', 'preferred_username', 'name', 'email', 'groups']);
  for (const [id, user] of Object.entries(users)) {
    if (user === null || typeof user !== 'object') fail(`IDP_USERS[${id}] must be an object`);
    const unknown = Object.keys(user).filter((key) => !known.has(key));
    if (unknown.length) fail(`IDP_USERS[${id}] has unknown keys: ${unknown.join(', ')}`);
    if (typeof user.password !== 'string' || !user.password) fail(`IDP_USERS[${id}].password must be a non-empty string`);
    for (const key of ['preferred_username', 'name', 'email']) {
      if (key in user && typeof user[key] !== 'string') fail(`IDP_USERS[${id}].${key} must be a string`);
    }
    if ('groups' in user && !isStringList(user.groups)) fail(`IDP_USERS[${id}].groups must be a list of strings`);
    user.groups ??= [];
  }
  return users;
}

const issuer = required('IDP_ISSUER');
const port = Number(required('IDP_PORT'));
if (!Number.isInteger(port) || port < 1 || port > 65535) fail(`IDP_PORT=${process.env.IDP_PORT} is not a port`);
const controlKey = Buffer.from(required('IDP_CONTROL_KEY'));
const users = parseUsers(required('IDP_USERS'));
// A second relying party of this provider: the audience fault hands the hub
// an ID token that was issued to it.
const otherClientId = process.env.IDP_OTHER_CLIENT_ID || 'someone-else';
const faults = {};

const client = {
  client_id: required('IDP_CLIENT_ID'),
  client_secret: required('IDP_CLIENT_SECRET'),
  redirect_uris: required('IDP_REDIRECT_URIS').split(',').map((uri) => uri.trim()).filter(Boolean),
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  // oidc-provider accepts client_secret_post for it too (oauthenticator's default).
  token_endpoint_auth_method: 'client_secret_basic',
};
if (client.client_id === otherClientId) fail('IDP_CLIENT_ID and IDP_OTHER_CLIENT_ID must differ');

// A fresh signing key per start: the tests never keep a token across restarts.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256', kid: 'test-idp' };

const provider = new Provider(issuer, {
  clients: [
    client,
    {
      client_id: otherClientId,
      client_secret: randomBytes(24).toString('hex'),
      redirect_uris: ['http://other-client.invalid/callback'],
    },
  ],
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email'],
    groups: ['groups'],
  },
  features: { devInteractions: { enabled: false } },
  pkce: { required: () => false }, // S256 when sent (the only method allowed), as a confidential client may
  ttl: { AccessToken: 3600, AuthorizationCode: 300, IdToken: 3600, RefreshToken: 86400, Grant: 86400 },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, id) {
    if (!Object.hasOwn(users, id)) return undefined;
    return {
      accountId: id,
      // Read at each call, so that a change of groups shows at the next userinfo.
      async claims() {
        const { password, ...claims } = users[id];
        return { preferred_username: id, ...claims, groups: [...claims.groups], sub: id };
      },
    };
  },
});

const escapeHtml = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title, body) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body><h1>${escapeHtml(title)}</h1>${body}</body></html>`;
}

function loginPage(uid, clientId, error = '', username = '') {
  return page('Sign in', `<p>to continue to <b>${escapeHtml(clientId)}</b></p>
${error ? `<p id="error" role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login" autocomplete="off">
<label>Username <input name="username" value="${escapeHtml(username)}" required autofocus></label>
<label>Password <input name="password" type="password" required></label>
<button type="submit" id="login">Sign in</button>
</form>`);
}

function consentPage(uid, clientId, scopes) {
  return page('Allow access?', `<p><b>${escapeHtml(clientId)}</b> asks for: ${escapeHtml(scopes.join(' '))}</p>
<form method="post" action="/interaction/${escapeHtml(uid)}/consent">
<button type="submit" name="decision" value="allow" id="allow">Allow</button>
<button type="submit" name="decision" value="deny" id="deny">Deny</button>
</form>`);
}

async function readBody(ctx) {
  const chunks = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += chunk.length;
    if (size > MAX_BODY) ctx.throw(413, 'request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function readJson(ctx) {
  if (!ctx.is('application/json')) ctx.throw(415, 'send application/json');
  try {
    return JSON.parse(await readBody(ctx));
  } catch (err) {
    if (err instanceof SyntaxError) ctx.throw(400, `invalid JSON: ${err.message}`);
    throw err;
  }
}

async function readForm(ctx) {
  if (!ctx.is('application/x-www-form-urlencoded')) ctx.throw(415, 'send a form');
  return new URLSearchParams(await readBody(ctx));
}

function sameSecret(given, expected) {
  return given.length === expected.length && timingSafeEqual(given, expected);
}

// The whole consent the prompt asks for, as one grant.
async function grantConsent(interaction) {
  const { prompt: { details }, params, session: { accountId } } = interaction;
  const grant = interaction.grantId
    ? await provider.Grant.find(interaction.grantId)
    : new provider.Grant({ accountId, clientId: params.client_id });
  if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
  if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(details.missingResourceScopes || {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  return { consent: { grantId: await grant.save() } };
}

async function finish(ctx, result) {
  ctx.status = 303;
  ctx.redirect(await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false }));
}

async function interaction(ctx, uid, action) {
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  if (details.uid !== uid) ctx.throw(400, 'this sign-in page belongs to another request: start again');
  const { prompt, params } = details;
  ctx.type = 'html';
  if (ctx.method === 'GET' && !action) {
    ctx.body = prompt.name === 'login'
      ? loginPage(uid, params.client_id)
      : consentPage(uid, params.client_id, String(params.scope || '').split(' '));
    return;
  }
  if (ctx.method !== 'POST') ctx.throw(405);
  const form = await readForm(ctx);
  if (action === 'login' && prompt.name === 'login') {
    const username = form.get('username') || '';
    const password = Buffer.from(form.get('password') || '');
    const user = Object.hasOwn(users, username) ? users[username] : null;
    if (!user || !sameSecret(password, Buffer.from(user.password))) {
      ctx.body = loginPage(uid, params.client_id, 'Wrong username or password.', username);
      return;
    }
    await finish(ctx, { login: { accountId: username } });
  } else if (action === 'consent' && prompt.name === 'consent') {
    const decision = form.get('decision');
    if (decision === 'allow') {
      await finish(ctx, await grantConsent(details));
    } else if (decision === 'deny') {
      await finish(ctx, { error: 'access_denied', error_description: 'the user denied access' });
    } else {
      ctx.throw(400, 'decision must be allow or deny');
    }
  } else {
    ctx.throw(400, `this request waits for ${prompt.name}, not ${action}`);
  }
}

// PUT /test/users/<id>/groups ["a", "b"]  and  PUT /test/faults {"id_token_audience": "<client id>"} | {}
async function control(ctx, path) {
  const [scheme, key] = (ctx.get('authorization') || '').split(' ');
  if (scheme !== 'Bearer' || !key || !sameSecret(Buffer.from(key), controlKey)) {
    ctx.set('WWW-Authenticate', 'Bearer');
    ctx.throw(401, 'the control API needs the bearer key IDP_CONTROL_KEY');
  }
  const groups = path.match(/^\/test\/users\/([^/]+)\/groups$/);
  if (groups) {
    let id;
    try {
      id = decodeURIComponent(groups[1]);
    } catch {
      ctx.throw(400, 'the user id is not URL-encoded properly');
    }
    if (!Object.hasOwn(users, id)) ctx.throw(404, `no user ${id}`);
    if (ctx.method !== 'PUT') ctx.throw(405);
    const value = await readJson(ctx);
    if (!isStringList(value)) ctx.throw(400, 'groups must be a JSON list of strings');
    users[id].groups = value;
    ctx.body = { id, groups: value };
  } else if (path === '/test/faults') {
    if (ctx.method !== 'PUT') ctx.throw(405);
    const value = await readJson(ctx);
    if (value === null || typeof value !== 'object' || Array.isArray(value)) ctx.throw(400, 'faults must be an object');
    const unknown = Object.keys(value).filter((name) => name !== 'id_token_audience');
    if (unknown.length) ctx.throw(400, `unknown faults: ${unknown.join(', ')}`);
    if ('id_token_audience' in value && value.id_token_audience !== otherClientId) {
      ctx.throw(400, `id_token_audience must be the other registered client, ${otherClientId}`);
    }
    for (const name of Object.keys(faults)) delete faults[name];
    Object.assign(faults, value);
    ctx.body = faults;
  } else {
    ctx.throw(404);
  }
}

// The audience fault: the token response carries an ID token that this
// provider issued, through its own IdToken model and keys, to the other
// registered client for the same user and request (nonce, sid, auth_time).
// oidc-provider always sets aud to the client of the request and has no hook
// to change it, and a token re-signed by hand would test nothing real; a token
// issued to another relying party is what a mixed-up or malicious provider
// would hand over.
async function swapIdToken(ctx) {
  const original = JSON.parse(Buffer.from(ctx.body.id_token.split('.')[1], 'base64url'));
  const other = await provider.Client.find(otherClientId);
  const token = new provider.IdToken({ sub: original.sub }, { ctx, client: other });
  token.scope = 'openid';
  for (const claim of ['nonce', 'sid', 'auth_time', 'acr', 'amr']) {
    if (claim in original) token.set(claim, original[claim]);
  }
  ctx.body = { ...ctx.body, id_token: await token.issue({ use: 'idtoken' }) };
}

provider.use(async (ctx, next) => {
  const started = Date.now();
  try {
    const path = ctx.path;
    const match = path.match(/^\/interaction\/([\w-]+)(?:\/(login|consent))?$/);
    if (match) {
      await interaction(ctx, match[1], match[2]);
    } else if (path === '/test' || path.startsWith('/test/')) {
      await control(ctx, path);
    } else {
      await next();
      if (ctx.oidc?.route === 'token' && ctx.status === 200 && ctx.body?.id_token && faults.id_token_audience) {
        await swapIdToken(ctx);
      }
    }
  } catch (err) {
    // oidc-provider's own errors (expired interaction, ...) carry a status: a page, never a 500.
    const status = err.status || err.statusCode || 500;
    if (status >= 500) console.error(err);
    ctx.status = status;
    const message = err.error_description || (err.expose ? err.message : 'internal error');
    if (ctx.path.startsWith('/test')) {
      ctx.body = { error: message };
    } else {
      ctx.type = 'html';
      ctx.body = page('Error', `<p id="error">${escapeHtml(message)}</p>`);
    }
  } finally {
    console.log(`${ctx.method} ${ctx.path} ${ctx.status} ${Date.now() - started}ms`);
  }
});

const server = provider.listen(port, () => console.log(`test identity provider ${issuer} listening on port ${port}`));
// PID 1 in its container: stop at once on `docker stop` (a provider-down test).
process.on('SIGTERM', () => server.close(() => process.exit(0)).closeAllConnections());
