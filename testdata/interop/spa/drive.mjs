// Drives the SPA in Debian's headless Chromium with playwright-core, as a
// person would: sign in through stile's pages, renew the tokens, sign out.
// Prints {"result": …} or {"error": …}.
//
// Environment: SPA_URL, USERNAME, PASSWORD, OTP, CHROMIUM (default /usr/bin/chromium).
import { env, launchChromium } from '../chromium.mjs'

async function state (page, status) {
  await page.waitForFunction((s) => {
    const t = document.getElementById('state')?.textContent || ''
    return t.includes(`"status":"${s}"`) || t.includes('"status":"error"')
  }, status, { timeout: 20000 })
  return JSON.parse(await page.textContent('#state'))
}

async function main () {
  const browser = await launchChromium()
  try {
    const page = await (await browser.newContext()).newPage()
    const visited = []
    page.on('framenavigated', (f) => { if (f === page.mainFrame()) visited.push(f.url()) })

    await page.goto(env('SPA_URL'))
    await state(page, 'anonymous')
    await page.click('#signin')
    await page.waitForSelector('#username')
    const loginURL = page.url()
    await page.fill('#username', env('USERNAME'))
    await page.fill('#password', env('PASSWORD'))
    await page.click('button[type=submit]')
    await page.waitForSelector('#otp')
    await page.fill('#otp', env('OTP'))
    await page.click('button[type=submit]')
    const signedIn = await state(page, 'signed in')

    await page.click('#renew')
    const renewed = await state(page, 'renewed')

    await page.click('#signout')
    const signedOut = await state(page, 'signed out')

    // Signed out of stile too: signing in again asks for the password.
    await page.click('#signin')
    await page.waitForSelector('#username', { timeout: 20000 })

    process.stdout.write(JSON.stringify({ result: { loginURL, signedIn, renewed, signedOut, againAt: page.url(), visited } }) + '\n')
  } finally {
    await browser.close()
  }
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ error: String(e) }) + '\n')
  process.exit(1)
})
