// Charts as inline SVG strings, drawn on the server by Observable Plot on a linkedom document.
//
// Why Plot + linkedom: the report must open with no network, so its charts are either inline SVG
// or a chart script inlined into the page. Plot (Observable's, ISC, pure JS on d3, no binary
// downloads) renders straight to SVG given any DOM `document`; linkedom (ISC, pure JS) is a small
// server-side DOM that Plot accepts. The page then carries no script at all: it is static SVG that
// any browser, a mail client or a printer shows, and nothing can fail at view time. Sizes: the
// demo run (60 logged steps, 10 charts) 40 KiB; 600 logged steps with energy 114 KiB; 5,000 or
// more ~200 KiB (series thinned to ~1,500 points). Rendering takes ~0.1 s. The other candidates:
// uPlot (~50 KB of script inlined, canvas, needs JS to draw), Chart.js (~200 KB of script),
// vega-lite (a larger dependency tree, verbose SVG). jsdom would do for Plot but pulls in ~40
// packages; linkedom about a dozen small ones (its optional canvas peer is not installed).
import * as Plot from '@observablehq/plot';
import { parseHTML } from 'linkedom';
import { thin, type Point } from './series.js';

const { document } = parseHTML('<!doctype html><html><head></head><body></body></html>');

const WIDTH = 560;
const HEIGHT = 240;
/** Colours for the two kernel paths and for train/val, fixed so every chart reads alike. */
const COLORS: Record<string, string> = { standard: '#8c8c8c', litespark: '#e8590c', train: '#1c7ed6', val: '#e8590c' };

/** Plot's attributes keep every float digit; two decimals are far below a pixel. */
function compact(svg: string): string {
  return svg.replace(/(\s[a-z-]+=")([^"]*)"/gi, (_m, a: string, v: string) => `${a}${v.replace(/(\.\d{2})\d+/g, '$1')}"`);
}

function render(options: Plot.PlotOptions): string {
  return compact((Plot.plot({ document, width: WIDTH, height: HEIGHT, style: { background: 'white' }, ...options }) as unknown as Element).outerHTML);
}

export interface LineSeries {
  name: string;
  points: Point[];
  /** Draw each point as a dot too (few points: evals). */
  dots?: boolean;
}

export interface LineChartSpec {
  xLabel: string;
  yLabel: string;
  series: LineSeries[];
  /** Format the y axis as a percentage (MFU). */
  percent?: boolean;
  /** Vertical rules at these x values (resume points), labelled. */
  rules?: { x: number; label: string }[];
  yZero?: boolean;
}

/** A line chart of one or more series; a legend when there are several. */
export function lineChart(spec: LineChartSpec): string {
  type Row = { series: string; x: number; y: number };
  const names = spec.series.map((s) => s.name);
  const marks: Plot.Markish[] = [];
  for (const s of spec.series) {
    const rows: Row[] = thin(s.points).map((p) => ({ series: s.name, x: p.x, y: p.y }));
    marks.push(Plot.line(rows, { x: 'x', y: 'y', stroke: 'series', strokeWidth: 1.5 }));
    if (s.dots) marks.push(Plot.dot(rows, { x: 'x', y: 'y', fill: 'series', r: 2.5, title: (d: Row) => `${s.name}: ${d.y} at ${d.x}` }));
  }
  for (const r of spec.rules ?? []) {
    marks.push(Plot.ruleX([r.x], { stroke: '#999', strokeDasharray: '4,3' }));
    marks.push(Plot.text([r.x], { x: (d: number) => d, frameAnchor: 'top', dy: 4, dx: 3, textAnchor: 'start', text: () => r.label, fill: '#666' }));
  }
  if (spec.yZero) marks.push(Plot.ruleY([0], { stroke: '#ccc' }));
  // A flat series (data wait 0 throughout) gets a readable axis instead of a zero-width domain.
  const ys = spec.series.flatMap((s) => s.points.map((p) => p.y));
  const flat = ys.length > 0 && ys.every((y) => y === ys[0]);
  const flatDomain = flat ? (ys[0] === 0 ? [0, 1] : [Math.min(0, ys[0]! * 2), Math.max(0, ys[0]! * 2)]) : undefined;
  return render({
    grid: true,
    marginLeft: 56,
    x: { label: spec.xLabel },
    y: { label: spec.yLabel, percent: spec.percent ?? false, zero: spec.yZero ?? false, ...(flatDomain ? { domain: flatDomain } : {}) },
    color: {
      domain: names,
      range: names.map((n, i) => COLORS[n] ?? ['#1c7ed6', '#e8590c', '#2f9e44', '#9c36b5'][i % 4]!),
      legend: names.length > 1,
    },
    marks,
  });
}

export interface BarRow {
  /** The group (facet) the bar stands in, e.g. 'S fp32'. */
  group: string;
  /** The bar's name inside its group, e.g. 'litespark'. */
  bar: string;
  value: number;
  label: string;
}

/** Grouped bars: one facet per group, one bar per kernel path inside it, its value written on top; `percent`: values are fractions. */
export function groupedBars(rows: BarRow[], yLabel: string, percent = false): string {
  const bars = [...new Set(rows.map((r) => r.bar))];
  const groups = [...new Set(rows.map((r) => r.group))];
  return render({
    width: Math.max(WIDTH, groups.length * bars.length * 56 + 80),
    marginLeft: 56,
    marginBottom: 36,
    fx: { label: null, domain: groups, padding: 0.15 },
    x: { axis: null, domain: bars, padding: 0.1 },
    y: { label: yLabel, grid: true, percent },
    color: { domain: bars, range: bars.map((b, i) => COLORS[b] ?? ['#1c7ed6', '#2f9e44', '#9c36b5'][i % 3]!), legend: true },
    marks: [
      Plot.barY(rows, { fx: 'group', x: 'bar', y: 'value', fill: 'bar', title: (r: BarRow) => `${r.group} ${r.bar}: ${r.label}` }),
      Plot.text(rows, { fx: 'group', x: 'bar', y: 'value', text: 'label', dy: -6, fontSize: 9 }),
      Plot.ruleY([0]),
    ],
  });
}

/** Horizontal bars, one row per label (per-kernel bench rows), facets per group. */
export function rowBars(rows: BarRow[], xLabel: string): string {
  const bars = [...new Set(rows.map((r) => r.bar))];
  const labels = [...new Set(rows.map((r) => r.label))];
  const groups = new Set(rows.map((r) => r.group)).size;
  return render({
    height: Math.max(HEIGHT, groups * labels.length * 13 + 70),
    width: WIDTH + 200,
    marginLeft: 260,
    x: { label: xLabel, grid: true },
    y: { label: null, domain: labels },
    fy: { label: null },
    color: { domain: bars, range: bars.map((b, i) => COLORS[b] ?? ['#1c7ed6', '#2f9e44', '#9c36b5'][i % 3]!), legend: true },
    marks: [
      Plot.barX(rows, { fy: 'group', y: 'label', x: 'value', fill: 'bar', title: (r: BarRow) => `${r.label}: ${r.value.toFixed(1)}` }),
      Plot.ruleX([0]),
    ],
  });
}
