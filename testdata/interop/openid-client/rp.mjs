// A confidential, server-side relying party on panva's openid-client — an
// OpenID-certified RP — run by stile's interop test. It speaks a line
// protocol on stdio: it prints {"authorize": URL}, reads back the URL the
// browser was redirected to, then does everything a web application does
// with the tokens and prints {"result": …}. Any failure is {"error": …}.
//
// Environment: ISSUER, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI.
import * as client from 'openid-client'
import { createInterface } from 'node:readline'

const env = (name) => {
  const v = process.env[name]
  if (!v) throw new Error(`${name} is not set`)
  return v
}

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]()
const say = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')

async function main () {
  const issuer = new URL(env('ISSUER'))
  const config = await client.discovery(issuer, env('CLIENT_ID'), env('CLIENT_SECRET'),
    client.ClientSecretBasic(env('CLIENT_SECRET')),
    issuer.protocol === 'http:' ? { execute: [client.allowInsecureRequests] } : undefined)

  // Authorization request: PKCE (S256), state and nonce.
  const verifier = client.randomPKCECodeVerifier()
  const state = client.randomState()
  const nonce = client.randomNonce()
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: env('REDIRECT_URI'),
    scope: 'openid profile email offline_access',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    prompt: 'consent'
  })
  say({ authorize: url.href })
  const back = (await lines.next()).value

  // The callback: state, iss (RFC 9207), code exchange, ID token validation.
  const tokens = await client.authorizationCodeGrant(config, new URL(back), {
    pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true
  })
  const claims = tokens.claims()
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub)

  // Refresh: a new access token and a rotated refresh token.
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token)
  const introspection = await client.tokenIntrospection(config, refreshed.access_token)

  // Revocation of the refresh token ends its family.
  await client.tokenRevocation(config, refreshed.refresh_token)
  let refreshAfterRevocation = 'succeeded'
  try {
    await client.refreshTokenGrant(config, refreshed.refresh_token)
  } catch (e) {
    refreshAfterRevocation = e.error || e.code || String(e)
  }
  const introspectionAfter = await client.tokenIntrospection(config, refreshed.access_token)

  say({
    result: {
      claims,
      userinfo,
      rotated: refreshed.refresh_token !== tokens.refresh_token,
      refreshedClaims: refreshed.claims(),
      introspection,
      refreshAfterRevocation,
      introspectionAfter
    }
  })
}

main().then(() => process.exit(0), (e) => {
  say({ error: `${e.name}: ${e.message}${e.cause ? ' (' + JSON.stringify(e.cause) + ')' : ''}` })
  process.exit(1)
})
