// Proves the harness in lib.mjs without the console: a throwaway HTTP server on 127.0.0.1 serves
// a page under the console's strict CSP that draws a chart with the vendored uPlot from a JSON
// data block, and a page that breaks the CSP with an inline script. Checks that the clean page is
// clean, its chart is drawn, axe runs on it and finds what it should, and the violation is caught.
// Run: bash infra/scripts/browser.sh && node tests/browser/smoke.mjs
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { axe, canvasOrSvgDrawn, check, launch, run, screenshot, watch } from './lib.mjs';

// The policy the console sends.
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
const VENDOR = new URL('../../functions/console/assets/vendor/', import.meta.url);

// Seven days of made-up activations: x is unix seconds, as uPlot expects.
const SERIES = [
  Array.from({ length: 7 }, (_, day) => 1767225600 + day * 86400),
  [12, 18, 9, 24, 30, 21, 27],
];

// A same-origin script: the CSP allows it, as it allows the vendored uPlot.
const CHART_JS = `
const data = JSON.parse(document.getElementById('series').textContent);
new uPlot(
  { width: 800, height: 300, series: [{ label: 'Day' }, { label: 'Activations', stroke: '#1f5fbf', width: 2 }] },
  data,
  document.getElementById('chart'),
);
`;

const page = (title, body) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${title}</title>
<link rel="stylesheet" href="/uPlot.min.css">
<script src="/uPlot.iife.min.js" defer></script>
<script src="/chart.js" defer></script>
</head>
<body>
<main>
<h1>${title}</h1>
${body}
</main>
</body>
</html>`;

// A JSON block is data, not script, so the CSP lets it be.
const CLEAN = page(
  'Activations',
  `<script type="application/json" id="series">${JSON.stringify(SERIES)}</script>
<div id="chart"></div>
<svg id="badge" width="24" height="24" aria-hidden="true"><rect width="24" height="24" fill="#2e7d32"/></svg>`,
);
// Breaks the CSP with an inline script, and lacks an image's alt text for axe to report.
const VIOLATING = page(
  'Violating',
  `<script>document.title = 'ran inline';</script>
<img src="data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7" width="10" height="10">`,
);

const ROUTES = {
  '/': ['text/html; charset=utf-8', CLEAN],
  '/violating': ['text/html; charset=utf-8', VIOLATING],
  '/chart.js': ['text/javascript', CHART_JS],
  '/uPlot.iife.min.js': ['text/javascript', readFileSync(new URL('uPlot.iife.min.js', VENDOR))],
  '/uPlot.min.css': ['text/css', readFileSync(new URL('uPlot.min.css', VENDOR))],
};

const server = createServer((req, res) => {
  const route = ROUTES[req.url];
  if (route) {
    res.writeHead(200, { 'content-type': route[0], 'content-security-policy': CSP });
    res.end(route[1]);
  } else if (req.url === '/favicon.ico') {
    // Chromium asks for a favicon, and a 404 for it is logged as a console error.
    res.writeHead(204);
    res.end();
  } else {
    res.writeHead(404);
    res.end();
  }
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));

const { browser, context } = await launch({ baseURL: `http://127.0.0.1:${server.address().port}` });

async function open(path) {
  const tab = await context.newPage();
  const watcher = watch(tab);
  await tab.goto(path);
  return { tab, watcher };
}

try {
  await run([
    {
      name: 'clean page: no console error, page error, failed request or CSP violation',
      fn: async () => {
        const { tab, watcher } = await open('/');
        check(await canvasOrSvgDrawn(tab, '#chart'), 'chart not drawn');
        watcher.assertClean('clean page');
        await tab.close();
      },
    },
    {
      name: 'canvasOrSvgDrawn: uPlot canvas and svg shape drawn, element without either not',
      fn: async () => {
        const { tab } = await open('/');
        check(await canvasOrSvgDrawn(tab, '#chart'), 'uPlot canvas under #chart not seen as drawn');
        check(await canvasOrSvgDrawn(tab, '#badge'), 'svg rect #badge not seen as drawn');
        check(!(await canvasOrSvgDrawn(tab, 'h1', { timeout: 200 })), 'h1 seen as a drawn chart');
        check(!(await canvasOrSvgDrawn(tab, '#missing', { timeout: 200 })), 'missing element seen as drawn');
        await tab.close();
      },
    },
    {
      name: 'page.evaluate runs under the strict CSP; page.addScriptTag is blocked and caught',
      fn: async () => {
        const { tab, watcher } = await open('/');
        check((await tab.evaluate(() => document.title)) === 'Activations', 'page.evaluate gave a wrong title');
        check((await tab.evaluate(() => eval('6 * 7'))) === 42, 'eval inside page.evaluate failed');
        watcher.assertClean('after page.evaluate');
        const blocked = await tab.addScriptTag({ content: 'window.injected = true;' }).then(
          () => false,
          () => true,
        );
        check(blocked, 'page.addScriptTag ran an inline script despite the CSP');
        check(watcher.problems.some((p) => p.kind === 'csp'), 'the blocked addScriptTag left no CSP violation');
        await tab.close();
      },
    },
    {
      name: 'axe runs under the strict CSP: an array, empty for the clean page, no CSP violation',
      fn: async () => {
        const { tab, watcher } = await open('/');
        const violations = await axe(tab);
        check(Array.isArray(violations), `axe returned ${typeof violations}`);
        check(violations.length === 0, `clean page has violations:\n${violations.join('\n')}`);
        watcher.assertClean('after axe');
        await tab.close();
      },
    },
    {
      name: 'axe reports the violating page\'s missing alt text',
      fn: async () => {
        const { tab } = await open('/violating');
        const violations = await axe(tab);
        check(violations.some((v) => v.startsWith('critical image-alt:')), `got:\n${violations.join('\n')}`);
        await tab.close();
      },
    },
    {
      name: 'watch catches the inline script on the violating page',
      fn: async () => {
        const { tab, watcher } = await open('/violating');
        check(watcher.problems.some((p) => p.kind === 'csp'), 'no CSP violation collected');
        check((await tab.title()) === 'Violating', 'the inline script ran');
        let message = '';
        try {
          watcher.assertClean('violating page');
        } catch (err) {
          message = err.message;
        }
        check(message.includes('[csp]'), `assertClean did not report the violation: ${message || 'no error'}`);
        await tab.close();
      },
    },
    {
      name: 'screenshot writes a 1440x900 PNG',
      fn: async () => {
        const { tab } = await open('/');
        await canvasOrSvgDrawn(tab, '#chart');
        const path = await screenshot(tab, 'smoke');
        const png = readFileSync(path);
        check(png.subarray(1, 4).toString() === 'PNG', `${path} is not a PNG`);
        check(png.readUInt32BE(16) === 1440 && png.readUInt32BE(20) === 900, `${path} is not 1440x900`);
        check(png.length > 1000, `${path} is suspiciously small`);
        await tab.close();
      },
    },
  ]);
} finally {
  await browser.close();
  server.close();
}
