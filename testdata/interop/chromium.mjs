// What the browser-driving scripts share: reading their environment, and
// Debian's Chromium launched headless by playwright-core (no browser is
// downloaded).
import { chromium } from 'playwright-core'

// env is an environment variable, or def; without either it is an error.
export const env = (name, def) => {
  const v = process.env[name] ?? def
  if (v === undefined) throw new Error(`${name} is not set`)
  return v
}

export function launchChromium () {
  return chromium.launch({
    executablePath: env('CHROMIUM', '/usr/bin/chromium'),
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync']
  })
}
