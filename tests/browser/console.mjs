// The operator console in a real browser (Debian Chromium, driven by playwright-core), against the
// stack `make test` starts, seeded with the demo book (`nectar-admin seed-demo`). Each effect of a
// click is checked through the operator API, not through the page that made it.
//
// Environment (set by infra/scripts/test.sh): CONSOLE_URL (the stack's edge), CONSOLE_TOKEN_ADMIN,
// CONSOLE_TOKEN_SUPPORT, CONSOLE_TOKEN_VIEWER (one operator of each role), NECTAR_E2E_ADMIN_TOKEN
// (the bootstrap token, for the API checks).
import { axe, canvasOrSvgDrawn, check, launch, run, screenshot, watch } from './lib.mjs';

const BASE = process.env.CONSOLE_URL;
const TOKENS = {
  admin: process.env.CONSOLE_TOKEN_ADMIN,
  support: process.env.CONSOLE_TOKEN_SUPPORT,
  viewer: process.env.CONSOLE_TOKEN_VIEWER,
};
const API_TOKEN = process.env.NECTAR_E2E_ADMIN_TOKEN;
for (const [name, value] of Object.entries({ CONSOLE_URL: BASE, API_TOKEN, ...TOKENS })) {
  if (!value) throw new Error(`${name} is not set: run the browser tests with make test`);
}

const { browser } = await launch();

/** The operator API, as the bootstrap admin. */
async function api(path, init = {}) {
  const response = await fetch(`${BASE}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${API_TOKEN}`, 'content-type': 'application/json', ...(init.headers || {}) },
  });
  const text = await response.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: response.status, body };
}

/** A fresh browser context signed in as `role`, with its page and problem watcher. */
async function signedIn(role) {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, baseURL: BASE });
  const page = await context.newPage();
  const watcher = watch(page);
  await page.goto('/console/');
  check(page.url().includes('/console/sign-in'), `an anonymous visit lands on sign-in, not ${page.url()}`);
  await page.getByLabel('Operator token').fill(TOKENS[role]);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL('**/console/licenses**');
  const who = await page.getByTestId('whoami').textContent();
  check(who.includes(role), `signed in as ${role}: ${who}`);
  return { context, page, watcher };
}

/** The first license id of a listing page (`query` filters it). */
async function firstLicense(page, query) {
  await page.goto(`/console/licenses?${query}`);
  const link = page.locator('[data-testid=licenses] tbody a').first();
  return (await link.textContent()).trim();
}

/** The license's status through the API (the fleet listing of its customer's licenses). */
async function statusOf(id, customerId) {
  const { status, body } = await api(`/api/admin/fleet/licenses?customerId=${customerId}&limit=200`);
  check(status === 200, `fleet listing: ${status}`);
  const found = body.items.find((l) => l.id === id);
  return found && found.status;
}

/** The customer id a license page shows. */
async function customerOn(page) {
  return (await page.getByTestId('customer-id').textContent()).trim();
}

/** Every `/console/` link of the page answers below 400 (with the page's session). */
async function linksResolve(page, context) {
  const hrefs = await page.$$eval('a[href^="/console/"]', (as) => [...new Set(as.map((a) => a.getAttribute('href')))]);
  for (const href of hrefs) {
    let r = await context.request.get(href, { maxRedirects: 0 });
    // `cargo lambda watch` itself now and then answers a 500 of its own under load (a JSON
    // problem document, never the console's HTML error page): such a GET is tried once more.
    if (r.status() === 500 && (await r.text()).includes('"title":"Internal Server Error"')) {
      console.error(`# ${href}: the local Lambda emulator's own 500; retried once`);
      r = await context.request.get(href, { maxRedirects: 0 });
    }
    check(r.status() < 400, `link ${href} answers ${r.status()}`);
  }
  return hrefs.length;
}

const PAGES = [
  { name: 'licenses', path: '/console/licenses', ready: '[data-testid=licenses]' },
  { name: 'customers', path: '/console/customers?q=a', ready: '[data-testid=customers]' },
  { name: 'installations', path: '/console/installations', ready: '[data-testid=versions]', chart: '[data-chart=installs-data]' },
  { name: 'usage', path: '/console/usage', ready: '[data-testid=top]', chart: '[data-chart=usage-data]' },
  { name: 'revenue', path: '/console/revenue', ready: '[data-testid=revenue-USD]', chart: '[data-chart=mrr-data]' },
];

await run([
  {
    name: 'each role sees only its own actions on a license page',
    fn: async () => {
      const expected = {
        viewer: [],
        support: ['suspend', 'renew'],
        admin: ['suspend', 'renew', 'change', 'revoke'],
      };
      for (const role of Object.keys(expected)) {
        const { context, page, watcher } = await signedIn(role);
        const id = await firstLicense(page, 'status=active');
        await page.goto(`/console/licenses/${id}`);
        const seen = [];
        for (const action of ['suspend', 'renew', 'change', 'revoke']) {
          if ((await page.getByTestId(action).count()) > 0) seen.push(action);
        }
        check(JSON.stringify(seen) === JSON.stringify(expected[role]), `${role} sees ${seen}, expected ${expected[role]}`);
        watcher.assertClean(`${role} license page`);
        await context.close();
      }
    },
  },
  {
    name: "a viewer's forged post, a CSRF-less post and a cross-site post are refused (403)",
    fn: async () => {
      const { context, page } = await signedIn('viewer');
      const id = await firstLicense(page, 'status=active');
      await page.goto(`/console/licenses/${id}`);
      // A viewer posting the suspend form by hand, with its own valid CSRF token.
      const forged = await page.evaluate(async (lid) => {
        const csrf = document.querySelector('input[name=csrf]').value;
        const body = new URLSearchParams({ csrf, reason: 'forged' });
        const r = await fetch(`/console/licenses/${lid}/suspend`, { method: 'POST', body });
        return r.status;
      }, id);
      check(forged === 403, `viewer's forged suspend answered ${forged}`);
      const customerId = await customerOn(page);
      const noToken = await context.request.post(`/console/licenses/${id}/suspend`, {
        form: { reason: 'no token' },
        headers: { origin: BASE },
        maxRedirects: 0,
      });
      check(noToken.status() === 403, `CSRF-less post answered ${noToken.status()}`);
      const crossSite = await context.request.post(`/console/licenses/${id}/suspend`, {
        form: { reason: 'cross', csrf: 'x' },
        headers: { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' },
        maxRedirects: 0,
      });
      check(crossSite.status() === 403, `cross-site post answered ${crossSite.status()}`);
      check((await statusOf(id, customerId)) === 'active', 'nothing was suspended');
      await context.close();
    },
  },
  {
    name: 'an admin searches a customer, issues a license and copies its key, suspends and reinstates it, changes its plan, revokes it',
    fn: async () => {
      const { context, page, watcher } = await signedIn('admin');
      // Search a customer of the demo book and go to their licenses.
      await page.goto('/console/customers');
      await page.getByLabel('Name starts with').fill('initech');
      await page.getByRole('button', { name: 'Search' }).click();
      await page.getByRole('link', { name: 'Licenses of Initech' }).first().click();
      const customerId = new URL(page.url()).searchParams.get('customerId');
      check(customerId, `a customer filter in ${page.url()}`);
      // Issue a license to them and copy its key: it validates.
      await page.getByRole('link', { name: 'Issue a license' }).click();
      await page.getByTestId('issue').getByLabel('Plan', { exact: true }).selectOption('starter');
      await page.getByTestId('issue').getByRole('button', { name: 'Issue and show the key' }).click();
      const issuedKey = (await page.getByTestId('license-key').inputValue()).trim();
      const issued = await api('/api/validate', {
        method: 'POST',
        body: JSON.stringify({ licenseKey: issuedKey, installationId: 'console-e2e' }),
      });
      check(issued.body.code === 'VALID', `the issued key validates: ${JSON.stringify(issued.body)}`);
      const id = issued.body.license.id;
      await screenshot(page, 'key');
      await page.getByRole('link', { name: `Back to ${id}` }).click();
      // Suspend: the page shows it, the audit trail has the line, the API agrees.
      const suspend = page.getByTestId('suspend');
      await suspend.getByLabel('Reason').fill('invoice 77 unpaid');
      await suspend.getByRole('button', { name: 'Suspend' }).click();
      await page.waitForURL(`**/console/licenses/${id}?notice=suspended`);
      check((await page.getByTestId('status').textContent()) === 'suspended', 'page shows suspended');
      const audit = await page.getByTestId('audit').textContent();
      check(audit.includes('license.suspended') && audit.includes('invoice 77 unpaid'), `audit line: ${audit}`);
      check((await statusOf(id, customerId)) === 'suspended', 'API: suspended');
      // Reinstate.
      const reinstate = page.getByTestId('reinstate');
      await reinstate.getByLabel('Reason').fill('paid');
      await reinstate.getByRole('button', { name: 'Reinstate' }).click();
      await page.waitForURL(`**/console/licenses/${id}?notice=reinstated`);
      check((await statusOf(id, customerId)) === 'active', 'API: active again');
      // Change the plan: the new key is shown once and validates as enterprise.
      const change = page.getByTestId('change');
      await change.getByLabel('Plan', { exact: true }).selectOption('enterprise');
      await change.getByRole('button', { name: 'Change and show the new key' }).click();
      const changedKey = (await page.getByTestId('license-key').inputValue()).trim();
      const valid = await api('/api/validate', {
        method: 'POST',
        body: JSON.stringify({ licenseKey: changedKey, installationId: 'console-e2e' }),
      });
      check(valid.body.code === 'VALID', `the changed key validates: ${JSON.stringify(valid.body)}`);
      check(valid.body.license.plan === 'enterprise', 'API: enterprise now');
      // Revoke: refused without the typed confirmation, done with it.
      await page.goto(`/console/licenses/${id}`);
      await screenshot(page, 'license');
      const revoke = page.getByTestId('revoke');
      await revoke.getByLabel('Reason').fill('issued by mistake');
      await revoke.getByLabel('Type the license id to confirm').fill('not the id');
      await revoke.getByRole('button', { name: 'Revoke for good' }).click();
      check((await page.getByTestId('error-code').textContent()) === 'INVALID_FIELD', 'a wrong confirmation is refused');
      check((await statusOf(id, customerId)) === 'active', 'not revoked yet');
      await page.goto(`/console/licenses/${id}`);
      await revoke.getByLabel('Reason').fill('issued by mistake');
      await revoke.getByLabel('Type the license id to confirm').fill(id);
      await revoke.getByRole('button', { name: 'Revoke for good' }).click();
      await page.waitForURL(`**/console/licenses/${id}?notice=revoked`);
      check((await statusOf(id, customerId)) === 'revoked', 'API: revoked');
      // The wrong confirmation's 400 page is logged by Chromium as a failed load; nothing else may be.
      const others = watcher.problems.filter((p) => !p.text.includes('400'));
      check(others.length === 0, `problems: ${others.map((p) => p.text).join('; ')}`);
      await context.close();
    },
  },
  {
    name: 'every page loads clean (no console error, no CSP violation), draws its charts, passes axe, and its links resolve',
    fn: async () => {
      const { context, page } = await signedIn('admin');
      let links = 0;
      for (const p of [...PAGES, { name: 'license-detail' }]) {
        const watcher = watch(page);
        if (p.path) {
          await page.goto(p.path);
        } else {
          await page.goto(`/console/licenses/${await firstLicense(page, 'status=active')}`);
        }
        if (p.ready) await page.waitForSelector(p.ready);
        if (p.chart) check(await canvasOrSvgDrawn(page, p.chart), `${p.name}: chart drawn`);
        const violations = await axe(page);
        check(violations.length === 0, `${p.name}: axe\n${violations.join('\n')}`);
        links += await linksResolve(page, context);
        await screenshot(page, p.name);
        watcher.assertClean(p.name);
        page.removeAllListeners('console');
        page.removeAllListeners('pageerror');
        page.removeAllListeners('requestfailed');
      }
      check(links > 10, `links checked: ${links}`);
      const signIn = await (await browser.newContext({ baseURL: BASE })).newPage();
      const w = watch(signIn);
      await signIn.goto('/console/sign-in');
      check((await axe(signIn)).length === 0, 'sign-in: axe');
      await screenshot(signIn, 'sign-in');
      w.assertClean('sign-in');
      await context.close();
    },
  },
]);

await browser.close();
