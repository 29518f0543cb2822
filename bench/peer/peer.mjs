// The reference OP for `mobileconnect bench --peer URL`: npm oidc-provider (the version pinned
// in package.json), configured for the two scenarios compared like for like:
//
//  * CIBA poll mode (scenario `ciba`): POST /backchannel with client_secret_basic and a
//    login_hint; `triggerAuthenticationDevice` approves the request at once (a Grant for the
//    hinted account, then `provider.backchannelResult`), as the bench's virtual phone approves
//    at once on our side; the first poll of POST /token with the CIBA grant gets the tokens,
//    the id_token signed RS256 with an RSA-2048 key made at start-up.
//  * client_credentials (scenario `client_credentials`): POST /token, client_secret_basic,
//    opaque access tokens (oidc-provider's default format).
//
// Storage is oidc-provider's bundled in-memory adapter (an LRU of 1,000 entries; ours writes
// to SQLite on disk). The bench runs one such process (Node is single-threaded; its libuv
// pool signs off the main thread); PEER_WORKERS=N runs N processes through node:cluster
// sharing the port (client_credentials only: the in-memory adapter is per process, so a CIBA
// poll could land on a process that does not know the request).
//
//   node peer.mjs [port]        # prints "peer listening on http://127.0.0.1:PORT pid PID"
//
// The client: id `bench-sp`, secret `bench-peer-secret` (loopback only; a bench fixture).

import cluster from 'node:cluster';
import { generateKeyPairSync } from 'node:crypto';

import Provider from 'oidc-provider';

const port = Number(process.argv[2] ?? process.env.PORT ?? 0);
const workers = Math.max(1, Number(process.env.PEER_WORKERS ?? 1));

export const CLIENT_ID = 'bench-sp';
export const CLIENT_SECRET = 'bench-peer-secret';
const CIBA_GRANT = 'urn:openid:params:grant-type:ciba';

if (workers > 1 && cluster.isPrimary) {
  // The workers share one listening socket; the primary only reports it.
  if (port === 0) {
    console.error('PEER_WORKERS > 1 needs a fixed port (node peer.mjs PORT)');
    process.exit(2);
  }
  for (let i = 0; i < workers; i += 1) cluster.fork();
  console.log(`peer listening on http://127.0.0.1:${port} pid ${process.pid} workers ${workers}`);
} else {
  await serve();
}

async function serve() {
  const jwk = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const server = (await import('node:http')).createServer();
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${server.address().port}`;

  const provider = new Provider(issuer, {
    clients: [{
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['client_credentials', CIBA_GRANT],
      response_types: [],
      redirect_uris: [],
      backchannel_token_delivery_mode: 'poll',
      id_token_signed_response_alg: 'RS256',
    }],
    jwks: { keys: [{ ...jwk, kid: 'bench', alg: 'RS256', use: 'sig' }] },
    cookies: { keys: ['bench-peer-cookie-key-loopback-only'] },
    findAccount: async (_ctx, sub) => ({
      accountId: sub,
      claims: async () => ({ sub }),
    }),
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      ciba: {
        enabled: true,
        deliveryModes: ['poll'],
        // "MSISDN:+44…" names the account, as Mobile Connect login hints do.
        processLoginHint: async (_ctx, loginHint) => loginHint.replace(/^MSISDN:/, ''),
        processLoginHintToken: async () => undefined,
        validateBindingMessage: async () => {},
        validateRequestContext: async () => {},
        verifyUserCode: async () => {},
        // The device approves at once: the request is resolved before the answer is sent.
        triggerAuthenticationDevice: async (ctx, request, account, client) => {
          const grant = new ctx.oidc.provider.Grant({
            clientId: client.clientId,
            accountId: account.accountId,
          });
          grant.addOIDCScope(request.scope);
          await grant.save();
          await ctx.oidc.provider.backchannelResult(request, grant, {
            authTime: Math.floor(Date.now() / 1000),
          });
        },
      },
    },
  });
  // Errors are answers here (the bench counts them); keep stderr quiet under load.
  provider.on('server_error', (_ctx, err) => console.error('server_error', err));

  server.on('request', provider.callback());
  if (!cluster.isWorker) {
    console.log(`peer listening on ${issuer} pid ${process.pid} workers 1`);
  }
}
