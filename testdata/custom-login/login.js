// An example custom login page on stile's JSON login API: plain JavaScript,
// no build step, no cookies. stile's /login sends the browser here with
// ?authRequestID=…&loginToken=…; the page asks for the password (sending
// both back with it: the loginToken shows stile that the call comes from
// the page it sent this browser to), then for the code of
// whatever method stile chose (TOTP, EMAIL, SMS, a recovery code, or a new
// authenticator to set up), and finally follows stile's redirectURI back to
// stile, which finishes the sign-in in this browser.
//
// Copy it, restyle it, keep the calls. Register the origin that serves it
// on the client (stile client update CLIENT --web-origin https://…) and its
// address as the client's login page (--login-url https://…/).
'use strict'

const config = window.STILE || {}
const issuer = (config.issuer || window.location.origin).replace(/\/$/, '')
const params = new URLSearchParams(window.location.search)
const authRequestID = params.get('authRequestID')
const loginToken = params.get('loginToken')
const $ = (id) => document.getElementById(id)
let transactionID = ''

function say (text, isError) {
  $('message').textContent = text || ''
  $('message').className = isError ? 'error' : ''
}

function showStep (id) {
  for (const step of ['password-step', 'code-step', 'restart']) $(step).hidden = step !== id
}

// call posts JSON to the API. Errors become {status, error, message}: the
// `error` field is stable for code to branch on; `message` is for people.
async function call (path, body) {
  let resp
  try {
    resp = await fetch(`${issuer}/login/api/${path}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
      credentials: 'omit'
    })
  } catch (e) {
    // A refused CORS preflight looks like a network failure to scripts.
    throw { status: 0, error: 'unreachable', message: 'stile cannot be reached from this page. Its origin must be registered as a web origin of the client.' }
  }
  const data = await resp.json().catch(() => ({}))
  if (!resp.ok) {
    let message = data.message || `stile answered ${resp.status}.`
    const wait = resp.headers.get('Retry-After')
    if (resp.status === 429 && wait) message += ` Try again in ${wait} seconds.`
    throw { status: resp.status, error: data.error || 'server_error', message }
  }
  return data
}

// next shows what stile asks for after a successful call.
function next (data) {
  if (data.redirectURI) {
    say('Signed in. Returning to the application…')
    window.location.assign(data.redirectURI)
    return
  }
  transactionID = data.transactionID || transactionID
  const enrolling = data.authType === 'TOTP_ENROLL'
  $('enroll').hidden = !enrolling
  if (enrolling && /^data:image\/png;base64,/.test(data.qr || '')) {
    $('qr').src = data.qr
    $('secret').textContent = data.secret
  }
  $('method').textContent = {
    TOTP: 'from your authenticator app',
    TOTP_ENROLL: 'from your authenticator app',
    EMAIL: 'from the email we sent',
    SMS: 'from the text message we sent',
    RECOVERY: '(a recovery code)'
  }[data.authType] || ''
  $('resend').hidden = data.authType !== 'EMAIL' && data.authType !== 'SMS'
  say(data.message)
  showStep('code-step')
  $('otp').value = ''
  $('otp').focus()
}

function failed (e) {
  say(e.message, true)
  // The transaction is over (expired, or too many wrong codes): only a new
  // sign-in from the application helps.
  if (e.error === 'transaction_expired' || e.error === 'account_disabled') showStep('restart')
}

// submit runs fn with the form's buttons disabled, so a double click sends once.
function submit (form, fn) {
  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    const buttons = form.querySelectorAll('button')
    buttons.forEach((b) => { b.disabled = true })
    try {
      next(await fn())
    } catch (e) {
      failed(e)
    } finally {
      buttons.forEach((b) => { b.disabled = false })
    }
  })
}

submit($('password-step'), () => call('authenticate', {
  authRequestID, loginToken, username: $('username').value, password: $('password').value
}))
submit($('code-step'), () => call('verify', { transactionID, otp: $('otp').value }))
$('resend').addEventListener('click', async () => {
  try {
    next(await call('resend', { transactionID }))
    say('A new code is on its way. The earlier one no longer works.')
  } catch (e) {
    failed(e)
  }
})

if (config.startURL) $('restart-link').href = config.startURL
if (authRequestID && loginToken) {
  showStep('password-step')
} else {
  say('This page is where stile sends a sign-in. Start one from the application.')
  showStep('restart')
}
