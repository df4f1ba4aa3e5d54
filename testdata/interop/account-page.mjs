// Drives stile's account page (/account) in Debian's headless Chromium with
// playwright-core, as a person would, on plain forms: sign in through an
// application, then every action of the page with its step-up refusals.
// What it saw goes back to the Go test (cmd/stile/account_page_test.go),
// which asserts it. Prints {"result": …} or {"error": …}.
//
// The Go test serves a helper on another site (HELPER):
//   /start?client=app|partner  a new authorization request of that client
//   /cb                        the clients' redirect URI
//   /totp?secret=S             the next TOTP code of S (it steps stile's clock by one period)
//   /mail?to=A&want=T          the code in the newest mail to A that contains T
//   /forge?path=P              a page on another site with a form that POSTs to stile's P
//
// Environment: STILE, HELPER, USERNAME, PASSWORD, NEW_PASSWORD, TOTP_SECRET,
// EMAIL, NEW_EMAIL, CHROMIUM.
import { env, launchChromium } from './chromium.mjs'

const stile = env('STILE')
const helper = env('HELPER')

async function fetchText (path) {
  const r = await fetch(helper + path)
  if (!r.ok) throw new Error(`helper ${path}: ${r.status}`)
  return r.text()
}

const totp = (secret) => fetchText('/totp?secret=' + encodeURIComponent(secret))
const mailCode = (to, want) => fetchText('/mail?' + new URLSearchParams({ to, want }))

// signIn runs an application's sign-in on stile's pages and returns where
// the browser ended (the client's /cb on success) and what the page said.
async function signIn (page, username, password, secret, client = 'app') {
  await page.goto(helper + '/start?client=' + client)
  await page.fill('#username', username)
  await page.fill('#password', password)
  await page.click('button[type=submit]')
  if (!page.url().startsWith(stile + '/login/otp')) {
    return { at: page.url(), text: await page.textContent('main') }
  }
  await page.fill('#otp', await totp(secret))
  await page.click('button[type=submit]')
  return { at: page.url(), text: await page.textContent('body') }
}

// account opens the account page and returns its status and text.
async function account (page) {
  const r = await page.goto(stile + '/account')
  return { status: r.status(), text: await page.textContent('main') }
}

// submit fills a form's fields (by input id) and clicks its button;
// returns the answer's status and text.
async function submit (page, fields, button) {
  for (const [id, value] of Object.entries(fields)) await page.fill('#' + id, value)
  const [resp] = await Promise.all([page.waitForNavigation(), page.click('#' + button)])
  return { status: resp.status(), text: await page.textContent('main') }
}

async function main () {
  const browser = await launchChromium()
  const out = {}
  try {
    const ctx = await browser.newContext()
    const page = await ctx.newPage()
    const scripts = []
    page.on('pageerror', (e) => scripts.push(String(e)))
    let secret = env('TOTP_SECRET')
    const username = env('USERNAME')

    out.signIn = await signIn(page, username, env('PASSWORD'), secret)
    out.first = await account(page)
    out.csp = (await page.goto(stile + '/account')).headers()['content-security-policy']

    // Step-up refusals: a wrong code, a missing one (spaces only).
    out.wrongCode = await submit(page, { 'recovery-otp': '000000' }, 'recovery-new')
    out.missingCode = await submit(page, { 'recovery-otp': '   ' }, 'recovery-new')
    // New recovery codes, shown once; the page counts them.
    const codesPage = await submit(page, { 'recovery-otp': await totp(secret) }, 'recovery-new')
    const codes = await page.$$eval('#codes code', (els) => els.map((e) => e.textContent))
    out.recovery = { status: codesPage.status, count: codes.length, left: (await account(page)).text }

    // Remove the authenticator with a recovery code.
    out.removed = await submit(page, { 'remove-otp': codes[0] }, 'totp-remove')

    // Add one: a recovery code proves it, the new app's first code confirms it.
    const scan = await submit(page, { 'totp-otp': codes[1] }, 'totp-add')
    out.scan = { status: scan.status, qr: await page.$eval('img.qr', (i) => i.src.startsWith('data:image/png;base64,')) }
    secret = await page.textContent('#secret')
    await page.fill('#otp', await totp(secret))
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')])
    out.added = { at: page.url(), text: await page.textContent('main') }

    // Change the email: a code sent on demand to the address on file proves
    // it, a code sent to the new address confirms it.
    await page.goto(stile + '/account')
    await Promise.all([page.waitForNavigation(), page.click('#send-EMAIL')])
    out.codeSent = await page.textContent('main')
    const stepUp = await mailCode(env('EMAIL'), 'confirm a change')
    out.emailStarted = await submit(page, { 'new-email': env('NEW_EMAIL'), 'email-otp': stepUp }, 'email-change-start')
    await page.fill('#code', await mailCode(env('NEW_EMAIL'), 'make this the email address'))
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')])
    out.emailChanged = { text: await page.textContent('main'), shown: await page.textContent('#email') }

    // Sessions: another browser signs in; this one signs it out.
    const other = await (await browser.newContext()).newPage()
    out.otherSignIn = await signIn(other, username, env('PASSWORD'), secret)
    out.otherBefore = (await account(other)).status
    const two = await account(page)
    out.sessionsListed = await page.$$eval('tr.session', (rows) => rows.length)
    out.currentMarked = await page.$$eval('#current-session', (rows) => rows.length)
    out.endOthers = await submit(page, {}, 'end-others')
    out.otherAfter = await account(other)
    out.sessionsLeft = await page.$$eval('tr.session', (rows) => rows.length)
    void two

    // A consent: the partner application asks, is allowed, and is withdrawn.
    await page.goto(helper + '/start?client=partner')
    await Promise.all([page.waitForNavigation(), page.click('button[value=allow]')])
    out.consentAt = page.url()
    out.consentListed = (await account(page)).text.includes('partner')
    await Promise.all([page.waitForNavigation(), page.click('form[action="/account/consents/withdraw"] button')])
    out.consentWithdrawn = await page.textContent('main')

    // CSRF: the same kind of POST from a page on another site is refused.
    await page.goto(helper + '/forge?path=/account/sessions/end-others')
    const [forged] = await Promise.all([page.waitForNavigation(), page.click('button')])
    out.forged = forged.status()
    out.afterForge = (await account(page)).status

    // The password: a wrong current password is refused; then the change,
    // which signs out every session; the old password then fails and the new
    // one works.
    const pw = { current: 'not the password', 'new-password': env('NEW_PASSWORD'), 'confirm-password': env('NEW_PASSWORD') }
    out.wrongCurrent = await submit(page, { ...pw, 'password-otp': await totp(secret) }, 'password-change')
    out.passwordWrongCode = await submit(page, { ...pw, current: env('PASSWORD'), 'password-otp': '000000' }, 'password-change')
    out.passwordChanged = await submit(page, { ...pw, current: env('PASSWORD'), 'password-otp': await totp(secret) }, 'password-change')
    out.afterPassword = (await account(page)).status
    const fresh = await (await browser.newContext()).newPage()
    out.oldPassword = await signIn(fresh, username, env('PASSWORD'), secret)
    out.newPassword = await signIn(fresh, username, env('NEW_PASSWORD'), secret)
    out.scriptErrors = scripts
    process.stdout.write(JSON.stringify({ result: out }) + '\n')
  } finally {
    await browser.close()
  }
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ error: String(e.stack || e) }) + '\n')
  process.exit(1)
})
