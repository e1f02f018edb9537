// The OpenID provider tests/access_oidc.rs starts: npm's oidc-provider on
// 127.0.0.1:<argv[3], or a free port>, printing "listening <port>" once it serves. One static
// client (wardops, secret "wardops-test-secret") whose redirect URI is argv[2]; static
// accounts whose claims carry the groups and regions the appliance maps. Its dev
// interactions take any password.
import http from 'node:http';
import Provider from 'oidc-provider';

const redirect = process.argv[2];
const listen = Number(process.argv[3] || 0);
const accounts = {
  oscar: { groups: ['noc', 'noc-operators'], regions: ['*'] },
  nino: { groups: ['noc-operators'], regions: ['east'] },
  ada: { groups: ['noc-admins'], regions: ['*'] },
  vic: { groups: ['noc'], regions: ['*'] },
  sam: { groups: ['sales'], regions: ['*'] },
};

const server = http.createServer();
server.listen(listen, '127.0.0.1', () => {
  const { port } = server.address();
  const provider = new Provider(`http://127.0.0.1:${port}`, {
    clients: [{
      client_id: 'wardops',
      client_secret: 'wardops-test-secret',
      redirect_uris: [redirect],
      grant_types: ['authorization_code'],
      response_types: ['code'],
    }],
    claims: {
      openid: ['sub'],
      profile: ['preferred_username', 'name'],
      groups: ['groups', 'regions'],
    },
    scopes: ['openid', 'profile', 'groups', 'offline_access'],
    // USERINFO=1: the ID token carries only `sub` and the rest is read from userinfo
    // (oidc-provider's default); else every claim is in the ID token itself.
    conformIdTokenClaims: process.env.USERINFO === '1',
    cookies: { keys: ['wardops-test-cookie-key'] },
    async findAccount(ctx, id) {
      if (!accounts[id]) return undefined;
      return {
        accountId: id,
        async claims() {
          return { sub: id, preferred_username: id, name: id, ...accounts[id] };
        },
      };
    },
  });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  server.on('request', provider.callback());
  console.log(`listening ${port}`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
