// The page around the charts: escaping, the header tables and the one stylesheet. Every piece
// of text from a run (config values, bench names, file names) goes through esc().

/** Escapes text for HTML element content and double-quoted attribute values. */
export function esc(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A chart in the page: its title, the inline SVG (already safe: built through a DOM) or a note. */
export function figure(id: string, title: string, svg: string | null, note?: string): string {
  const body = svg ?? `<p class="none">${esc(note ?? 'no data')}</p>`;
  const extra = svg && note ? `<p class="note">${esc(note)}</p>` : '';
  return `<figure class="${svg ? 'chart' : 'chart-empty'}" id="${esc(id)}"><figcaption>${esc(title)}</figcaption>${body}${extra}</figure>`;
}

/** A two-column table of name/value pairs; values are text (escaped here). */
export function table(rows: [string, string][]): string {
  return `<table>${rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('')}</table>`;
}

const CSS = `
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}
.sub{color:#666;margin:0 0 16px}
.cards{display:flex;flex-wrap:wrap;gap:16px;margin-bottom:16px}
.cards>div{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 12px}
table{border-collapse:collapse}th{text-align:left;font-weight:600;padding:2px 12px 2px 0;color:#555}td{padding:2px 0}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(580px,1fr));gap:16px}
figure.chart,figure.chart-empty{margin:0;background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px;overflow-x:auto}
figure.chart>figcaption,figure.chart-empty>figcaption{font-weight:600;margin-bottom:4px}
.none{color:#888;font-style:italic;padding:24px 0;text-align:center}
.note{color:#666;font-size:12px;margin:4px 0 0}
footer{color:#888;font-size:12px;margin-top:24px}
`;

export function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${CSS}</style>
</head>
<body>
${body}
</body>
</html>
`;
}
