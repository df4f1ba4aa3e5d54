// A public SPA client on oidc-client-ts: the authorization-code flow with
// PKCE through stile's pages, token renewal with refresh tokens (no
// iframe, so no third-party cookies needed), and RP-initiated logout.
// window.STILE holds { authority, client_id } (served by the test).
const origin = window.location.origin
const mgr = new oidc.UserManager({
  authority: window.STILE.authority,
  client_id: window.STILE.client_id,
  redirect_uri: origin + '/',
  post_logout_redirect_uri: origin + '/signed-out',
  response_type: 'code',
  scope: 'openid profile offline_access',
  loadUserInfo: true,
  automaticSilentRenew: false
})

const state = document.getElementById('state')
const show = (status, user) => {
  state.textContent = JSON.stringify({
    status,
    sub: user?.profile?.sub,
    uid: user?.profile?.uid,
    roles: user?.profile?.roles,
    name: user?.profile?.preferred_username,
    accessToken: user?.access_token,
    hasRefreshToken: Boolean(user?.refresh_token)
  })
}
const fail = (e) => { state.textContent = JSON.stringify({ status: 'error', error: String(e) }) }

document.getElementById('signin').onclick = () => mgr.signinRedirect().catch(fail)
document.getElementById('renew').onclick = () => mgr.signinSilent().then((u) => show('renewed', u), fail)
document.getElementById('signout').onclick = () => mgr.signoutRedirect().catch(fail)

async function start () {
  const url = new URL(window.location.href)
  if (url.pathname === '/signed-out') {
    await mgr.removeUser()
    return show('signed out')
  }
  if (url.searchParams.has('code') || url.searchParams.has('error')) {
    const user = await mgr.signinRedirectCallback()
    window.history.replaceState({}, '', '/')
    return show('signed in', user)
  }
  const user = await mgr.getUser()
  show(user ? 'signed in' : 'anonymous', user)
}
start().catch(fail)
