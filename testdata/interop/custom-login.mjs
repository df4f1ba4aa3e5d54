// Drives the example custom login page (testdata/custom-login) in Debian's
// headless Chromium with playwright-core, as a person would: the
// application's sign-in goes to stile, stile hands over to the page, the
// page calls the JSON login API, and the browser ends on the application's
// redirect URI. Prints {"result": …} or {"error": …}.
//
// Environment:
//   START_URL    where the application starts a sign-in
//   DONE_PREFIX  the URL the sign-in must end on (the redirect URI, or the demo client's callback)
//   USERNAME, PASSWORD, OTP
//   FOREIGN      optional: the same page on an origin the client has not
//                registered; the page is reopened there before signing in,
//                and the run reports what the page says instead of signing in
//   CHROMIUM     default /usr/bin/chromium
import { env, launchChromium } from './chromium.mjs'

async function main () {
  const browser = await launchChromium()
  try {
    const page = await (await browser.newContext()).newPage()
    // Script errors, and responses that failed (but the browser's own
    // favicon request), both of which the page must not cause.
    const consoleErrors = []
    page.on('pageerror', (e) => consoleErrors.push(String(e)))
    page.on('response', (r) => {
      if (r.status() >= 400 && !r.url().endsWith('/favicon.ico')) consoleErrors.push(`${r.status()} ${r.url()}`)
    })

    await page.goto(env('START_URL'))
    await page.waitForSelector('#username:visible', { timeout: 20000 })
    const loginURL = page.url()
    const foreign = env('FOREIGN', '')
    if (foreign) {
      await page.goto(foreign + new URL(loginURL).search)
      await page.waitForSelector('#username:visible')
    }
    await page.fill('#username', env('USERNAME'))
    await page.fill('#password', env('PASSWORD'))
    await page.click('#password-step button[type=submit]')
    if (foreign) {
      await page.waitForFunction(() => document.getElementById('message').className === 'error', null, { timeout: 20000 })
      const message = await page.textContent('#message')
      process.stdout.write(JSON.stringify({ result: { loginURL, at: page.url(), message, consoleErrors } }) + '\n')
      return
    }
    await page.waitForSelector('#otp:visible', { timeout: 20000 })
    const prompt = await page.textContent('#message')
    await page.fill('#otp', env('OTP'))
    const done = env('DONE_PREFIX')
    await Promise.all([
      page.waitForURL((u) => u.href.startsWith(done), { timeout: 20000 }),
      page.click('#code-step button[type=submit]')
    ])
    process.stdout.write(JSON.stringify({ result: { loginURL, prompt, at: page.url(), body: await page.textContent('body'), consoleErrors } }) + '\n')
  } finally {
    await browser.close()
  }
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ error: String(e) }) + '\n')
  process.exit(1)
})
