// Drives stile's own code page in Debian's headless Chromium with
// playwright-core, as a person would: the password, then the code field —
// numeric, so the browser itself refuses a recovery code typed into it —
// then "Use a recovery code", which switches to a text field (a link: the
// page runs no script) where a recovery code signs in. Prints
// {"result": …} or {"error": …}.
//
// Environment:
//   START_URL    where the application starts a sign-in
//   DONE_PREFIX  the URL the sign-in must end on (the client's redirect URI)
//   USERNAME, PASSWORD, RECOVERY (one of the user's recovery codes)
//   CHROMIUM     default /usr/bin/chromium
import { env, launchChromium } from './chromium.mjs'

const attrs = (page) => page.$eval('#otp', (e) => ({
  type: e.type,
  inputMode: e.inputMode,
  autocomplete: e.getAttribute('autocomplete'),
  pattern: e.getAttribute('pattern'),
  autocapitalize: e.getAttribute('autocapitalize'),
  spellcheck: e.getAttribute('spellcheck')
}))

// validity fills the field and asks the browser whether the form may be sent.
const validity = async (page, value) => {
  await page.fill('#otp', value)
  return page.$eval('#otp', (e) => e.checkValidity())
}

async function main () {
  const browser = await launchChromium()
  try {
    const page = await (await browser.newContext()).newPage()
    // Script errors, CSP violations (console errors) and failed responses
    // (but the browser's own favicon request): the page must cause none.
    const consoleErrors = []
    page.on('pageerror', (e) => consoleErrors.push(String(e)))
    page.on('console', (m) => {
      if (m.type() === 'error' && !m.location().url.endsWith('/favicon.ico')) consoleErrors.push(`${m.text()} ${m.location().url}`)
    })
    page.on('response', (r) => {
      if (r.status() >= 400 && !r.url().endsWith('/favicon.ico')) consoleErrors.push(`${r.status()} ${r.url()}`)
    })

    await page.goto(env('START_URL'))
    await page.fill('#username', env('USERNAME'))
    await page.fill('#password', env('PASSWORD'))
    await Promise.all([page.waitForURL(/\/login\/otp\?/), page.click('button[type=submit]')])
    const code = await attrs(page)
    const digitsValid = await validity(page, '123 456')
    const recoveryInCodeFieldValid = await validity(page, env('RECOVERY'))

    await Promise.all([page.waitForURL(/recovery=1/), page.click('text=Use a recovery code')])
    const recovery = await attrs(page)
    const recoveryValid = await validity(page, env('RECOVERY'))
    const done = env('DONE_PREFIX')
    await Promise.all([
      page.waitForURL((u) => u.href.startsWith(done), { timeout: 20000 }),
      page.click('button[type=submit]')
    ])
    process.stdout.write(JSON.stringify({
      result: { code, digitsValid, recoveryInCodeFieldValid, recovery, recoveryValid, at: page.url(), consoleErrors }
    }) + '\n')
  } finally {
    await browser.close()
  }
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ error: String(e) }) + '\n')
  process.exit(1)
})
