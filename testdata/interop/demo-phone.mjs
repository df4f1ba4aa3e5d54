// Signs in to the demo client (stile serve --demo) in Debian's headless
// Chromium with playwright-core, on a phone-sized viewport (390×844), and
// reports how wide the callback page is — with the demo's stylesheet, and
// again without it (the layout before it existed) — what its copy button
// put on the clipboard, and how a reload and a stale callback address look.
// Prints {"result": …} or {"error": …}.
//
// Environment:
//   START_URL     the demo client's /demo/login
//   CALLBACK_URL  the demo client's /demo/callback
//   USERNAME, PASSWORD, OTP
//   CHROMIUM      default /usr/bin/chromium
import { env, launchChromium } from './chromium.mjs'

const phone = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true }

// width is how wide the document is laid out, and how wide the viewport is.
const width = (page) => page.evaluate(() => ({
  scroll: document.documentElement.scrollWidth,
  client: document.documentElement.clientWidth
}))

const text = (page, sel) => page.$eval(sel, (e) => e.textContent)

async function main () {
  const browser = await launchChromium()
  try {
    const context = await browser.newContext(phone)
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(env('START_URL')).origin })
    const page = await context.newPage()
    const consoleErrors = []
    page.on('pageerror', (e) => consoleErrors.push(String(e)))
    page.on('console', (m) => {
      if (m.type() === 'error' && !m.location().url.endsWith('/favicon.ico')) consoleErrors.push(`${m.text()} ${m.location().url}`)
    })

    await page.goto(env('START_URL'))
    await page.fill('#username', env('USERNAME'))
    await page.fill('#password', env('PASSWORD'))
    await Promise.all([page.waitForURL(/\/login\/otp\?/), page.click('button[type=submit]')])
    await page.fill('#otp', env('OTP'))
    const callback = env('CALLBACK_URL')
    await Promise.all([
      page.waitForURL((u) => u.href.startsWith(callback), { timeout: 20000 }),
      page.click('button[type=submit]')
    ])
    const signedIn = {
      url: page.url(),
      title: await text(page, 'h1'),
      width: await width(page),
      rawToken: await text(page, '#raw-access-token'),
      exportLine: await text(page, '#export-access-token'),
      copyVisible: await page.isVisible('button.copy')
    }
    await page.click('button.copy')
    signedIn.copied = await page.evaluate(() => navigator.clipboard.readText())
    signedIn.copyLabel = await text(page, 'button.copy')

    const response = await page.reload()
    const reloaded = { status: response.status(), title: await text(page, 'h1'), width: await width(page), exportLine: await text(page, '#export-access-token') }

    // The control: the same page laid out without the demo's stylesheet.
    await page.$eval('link[href="/demo/static/demo.css"]', (e) => e.remove())
    const withoutDemoCSS = await width(page)

    // A callback address this browser did not start: the error page.
    const other = await (await browser.newContext(phone)).newPage()
    const stale = await other.goto(signedIn.url)
    const staleCallback = { status: stale.status(), title: await text(other, 'h1'), width: await width(other) }

    process.stdout.write(JSON.stringify({
      result: { signedIn, reloaded, withoutDemoCSS, staleCallback, consoleErrors }
    }) + '\n')
  } finally {
    await browser.close()
  }
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ error: String(e) }) + '\n')
  process.exit(1)
})
