// Harness for the browser tests: drives Debian's Chromium (/usr/bin/chromium, installed by
// infra/scripts/browser.sh) with playwright-core, since Playwright's own browser download cannot
// reach its servers here. It collects what a person would see go wrong in a page (console errors,
// uncaught exceptions, failed requests, CSP violations), runs axe-core, takes screenshots and
// checks that charts were drawn, and has a tiny sequential test runner with TAP-like output.
//
// Facts these helpers rely on, checked by smoke.mjs under the console's strict CSP
// (`default-src 'none'; script-src 'self'; ...`):
// - page.evaluate and page.waitForFunction work: Playwright runs them over the DevTools protocol,
//   which the page's CSP does not govern (even eval inside them is allowed).
// - page.addScriptTag({content}) is blocked (an inline script) and logs a CSP violation itself.
// - Chromium logs every CSP violation to the console as an error, so watching the console is
//   enough to catch them (an init script listening for `securitypolicyviolation` is not needed).
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, errors } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
// Playwright adds --headless itself and starts each launch with a new, empty temporary profile.
// Without the background-networking flags Chromium keeps trying to reach Google's services,
// and those connections are refused by the closed network.
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const VIEWPORT = { width: 1440, height: 900 };
const SCREENSHOTS = fileURLToPath(new URL('./screenshots/', import.meta.url));
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** Starts Chromium and one browser context; page.goto('/path') is relative to baseURL. */
export async function launch({ baseURL = process.env.CONSOLE_URL } = {}) {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  const context = await browser.newContext({ viewport: VIEWPORT, ignoreHTTPSErrors: false, baseURL });
  return { browser, context };
}

/**
 * Collects what goes wrong in `page` from now on: console errors, uncaught exceptions
 * (`pageerror`), failed requests and CSP violations (console messages naming the Content
 * Security Policy, whatever their level, so `[Report Only]` ones count too). Call it before
 * page.goto. A response with an error status is not a failed request, but Chromium logs it as a
 * console error ("Failed to load resource"), so it is caught as well.
 */
export function watch(page) {
  const problems = [];
  page.on('console', (msg) => {
    const text = msg.text();
    if (text.includes('Content Security Policy')) {
      problems.push({ kind: 'csp', text });
    } else if (msg.type() === 'error') {
      const { url, lineNumber } = msg.location();
      problems.push({ kind: 'console.error', text: url ? `${text} (${url}:${lineNumber})` : text });
    }
  });
  page.on('pageerror', (err) => problems.push({ kind: 'pageerror', text: err.message }));
  page.on('requestfailed', (req) =>
    problems.push({ kind: 'requestfailed', text: `${req.method()} ${req.url()}: ${req.failure()?.errorText}` }),
  );
  return {
    problems,
    assertClean(label) {
      if (problems.length > 0) {
        const list = problems.map((p) => `  [${p.kind}] ${p.text}`).join('\n');
        throw new Error(`${label}: ${problems.length} problem(s) in the page\n${list}`);
      }
    },
  };
}

/**
 * Runs axe-core on the page as it is now and returns its serious and critical violations, one
 * readable line each (an empty array when there are none). axe is evaluated into the page through
 * page.evaluate, which the CSP does not block, so it runs in the same context as the CSP checks,
 * with the page's state (session, what a test clicked) intact, and adds no CSP violation.
 */
export async function axe(page) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) {
    await page.evaluate(AXE_SOURCE);
  }
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document);
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      helpUrl: v.helpUrl,
      targets: v.nodes.map((n) => n.target.join(' ')),
    }));
  });
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id}: ${v.help} [${v.targets.join(', ')}] ${v.helpUrl}`);
}

/** Saves what the viewport (1440×900) shows to tests/browser/screenshots/<name>.png. */
export async function screenshot(page, name) {
  await mkdir(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: false });
  return path;
}

/**
 * True when the element under `selector` holds a drawn chart: an <svg> shape (path, rect, circle)
 * with a non-zero box, or a <canvas> with at least one non-transparent pixel. Charts are drawn
 * by scripts after load, so this waits up to `timeout` ms for one before answering false.
 */
export async function canvasOrSvgDrawn(page, selector, { timeout = 2000 } = {}) {
  try {
    await page.waitForFunction(drawnInPage, selector, { timeout });
    return true;
  } catch (err) {
    if (err instanceof errors.TimeoutError) return false;
    throw err;
  }
}

// Runs in the page. A horizontal line's path is zero pixels high, so either side being non-zero
// counts as drawn.
function drawnInPage(selector) {
  const root = document.querySelector(selector);
  if (!root) return false;
  const shapes = root.querySelectorAll('svg path, svg rect, svg circle');
  for (const shape of shapes) {
    const box = shape.getBoundingClientRect();
    if (box.width > 0 || box.height > 0) return true;
  }
  const canvases = root.matches('canvas') ? [root] : root.querySelectorAll('canvas');
  for (const canvas of canvases) {
    const ctx = canvas.width > 0 && canvas.height > 0 ? canvas.getContext('2d') : null;
    if (!ctx) continue;
    const pixels = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    for (let alpha = 3; alpha < pixels.length; alpha += 4) {
      if (pixels[alpha] !== 0) return true;
    }
  }
  return false;
}

export function check(cond, message) {
  if (!cond) throw new Error(message);
}

/**
 * Runs `tests` ({name, fn}) one after another and prints `ok - name` or `not ok - name: error`,
 * then `browser: N passed, M failed`; any failure sets the process's exit code to 1.
 */
export async function run(tests) {
  let passed = 0;
  let failed = 0;
  for (const { name, fn } of tests) {
    try {
      await fn();
      passed += 1;
      console.log(`ok - ${name}`);
    } catch (err) {
      failed += 1;
      const message = err instanceof Error ? err.message : String(err);
      console.log(`not ok - ${name}: ${message.replaceAll('\n', '\n    ')}`);
    }
  }
  console.log(`browser: ${passed} passed, ${failed} failed`);
  if (failed > 0) process.exitCode = 1;
}
