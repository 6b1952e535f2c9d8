// Loads an HTML file in a real headless Chromium (Debian's `chromium`, no download) and says what
// the browser saw: a probe script, added to a copy of the page, records every error event
// (script errors, resources that failed to load) and console.error call from the start of the
// page, and after the load event measures each `figure.chart`: the laid-out size of its largest
// SVG or canvas and how many drawn marks (path, line, rect, circle, polyline with a non-empty
// box) it holds, and how many of those are data marks (Plot's line, bar and dot groups) rather
// than axes and grid. Chromium prints the DOM with the probe's result (--dump-dom) and every
// console message on stderr (--enable-logging=stderr), which the caller checks too.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { delimiter, join } from 'node:path';
import { pathToFileURL } from 'node:url';

export const BROWSERS = ['chromium', 'chromium-browser', 'google-chrome'];

/** The first of chromium, chromium-browser, google-chrome on PATH, or null. */
export function findChromium(): string | null {
  for (const name of BROWSERS) {
    for (const dir of (process.env.PATH ?? '').split(delimiter)) {
      if (!dir) continue;
      const p = join(dir, name);
      try {
        accessSync(p, constants.X_OK);
        return p;
      } catch {
        // not here
      }
    }
  }
  return null;
}

export interface ChartSeen {
  id: string;
  kind: string;
  width: number;
  height: number;
  /** Drawn elements of any kind (axes and grid included). */
  marks: number;
  /** Drawn data marks: Plot's line paths, bars and dots. */
  data: number;
}

export interface BrowserResult {
  /** The probe's report: null when the page never reached its load event (or Chromium failed). */
  probe: { errors: string[]; charts: ChartSeen[]; title: string } | null;
  /** Console messages Chromium logged (any level). */
  console: string[];
  status: number | null;
  stderrTail: string;
}

const PROBE_HEAD = `<script>(() => {
  const errors = [];
  window.__probeErrors = errors;
  addEventListener('error', (e) => {
    const t = e.target;
    errors.push(t && t !== window ? 'failed to load ' + (t.src || t.href || t.tagName) : String(e.message));
  }, true);
  const ce = console.error.bind(console);
  console.error = (...a) => { errors.push(a.map(String).join(' ')); ce(...a); };
  addEventListener('load', () => {
    const charts = [...document.querySelectorAll('figure.chart')].map((f) => {
      const els = [...f.querySelectorAll('svg, canvas')].map((el) => ({ el, r: el.getBoundingClientRect() }));
      els.sort((a, b) => b.r.width * b.r.height - a.r.width * a.r.height);
      const big = els[0];
      let marks = 0, data = 0;
      if (big && big.el.tagName.toLowerCase() === 'svg') {
        const drawn = (sel) => [...big.el.querySelectorAll(sel)].filter((m) => { const b = m.getBBox(); return b.width > 0 || b.height > 0; }).length;
        marks = drawn('path, line, rect, circle, polyline');
        data = drawn('[aria-label="line"] path, [aria-label="bar"] rect, [aria-label="dot"] circle');
      } else if (big) {
        marks = big.r.width > 0 ? 1 : 0;
      }
      return { id: f.id, kind: big ? big.el.tagName.toLowerCase() : 'none', width: big ? big.r.width : 0, height: big ? big.r.height : 0, marks, data };
    });
    const pre = document.createElement('pre');
    pre.id = '__probe';
    pre.textContent = JSON.stringify({ errors, charts, title: document.title });
    document.body.appendChild(pre);
  });
})();</script>`;

function unescapeHtml(s: string): string {
  return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&nbsp;/g, '\u00a0').replace(/&amp;/g, '&');
}

/** Opens `htmlFile` (a copy of it with the probe) in headless `chromium` and returns what it saw. */
export function loadInChromium(chromium: string, htmlFile: string, timeoutMs = 30_000): BrowserResult {
  const dir = mkdtempSync(join(os.tmpdir(), 'litespark-chromium-'));
  try {
    const html = readFileSync(htmlFile, 'utf8');
    const probed = html.includes('<head>') ? html.replace('<head>', `<head>${PROBE_HEAD}`) : PROBE_HEAD + html;
    const page = join(dir, 'page.html');
    writeFileSync(page, probed);
    const r = spawnSync(chromium, [
      '--headless', '--disable-gpu', '--no-sandbox', '--no-first-run', '--no-default-browser-check',
      `--user-data-dir=${join(dir, 'profile')}`, '--enable-logging=stderr', '--v=0',
      '--window-size=1280,2000', '--dump-dom', pathToFileURL(page).href,
    ], { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 });
    const out = r.stdout ?? '';
    const err = r.stderr ?? '';
    const m = /<pre id="__probe">([\s\S]*?)<\/pre>/.exec(out);
    return {
      probe: m ? JSON.parse(unescapeHtml(m[1]!)) : null,
      console: err.split('\n').filter((l) => /:CONSOLE[:(]/.test(l)),
      status: r.status,
      stderrTail: err.slice(-2000),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
