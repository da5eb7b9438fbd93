'use strict';
// Small, dependency-free SVG charts for docs/benchmarks.md: a line chart (log or linear axes) and a
// grouped bar chart. Plain SVG 1.1 text, readable in any browser and on GitHub.

const WIDTH = 880;
const HEIGHT = 420;
const MARGIN = {left: 70, right: 260, top: 40, bottom: 56};
const PLOT_W = WIDTH - MARGIN.left - MARGIN.right;
const PLOT_H = HEIGHT - MARGIN.top - MARGIN.bottom;
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const num = (x) => (Math.abs(x) >= 1000 ? `${+(x / 1000).toFixed(1)}k` : `${+x.toFixed(2)}`);

function scale(min, max, log, length, flip) {
  const lo = log ? Math.log10(min) : min;
  const hi = log ? Math.log10(max) : max;
  return (v) => {
    const t = ((log ? Math.log10(v) : v) - lo) / (hi - lo || 1);
    return flip ? length * (1 - t) : length * t;
  };
}

function ticks(min, max, log) {
  if (log) {
    const out = [];
    for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
      for (const m of [1, 2, 5]) {
        const v = m * 10 ** e;
        if (v >= min && v <= max) out.push(v);
      }
    }
    return out;
  }
  const step = 10 ** Math.floor(Math.log10((max - min) / 5 || 1));
  const nice = [1, 2, 5, 10].map((m) => m * step).find((s) => (max - min) / s <= 8);
  const out = [];
  for (let v = Math.ceil(min / nice) * nice; v <= max + 1e-9; v += nice) out.push(v);
  return out;
}

function frame(title, body, legend) {
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">
<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>
<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="15">${esc(title)}</text>
<g transform="translate(${MARGIN.left},${MARGIN.top})">
${body}
</g>
<g transform="translate(${WIDTH - MARGIN.right + 14},${MARGIN.top})">
${legend}
</g>
</svg>
`;
}

/**
 * series: [{name, points: [[x, y], ...], dash?: bool, color?}]; marks: [{y, label}] (horizontal lines).
 * xLog / yLog: logarithmic axes (points must be > 0).
 */
function lineChart({title, xLabel, yLabel, series, xLog = false, yLog = false, marks = []}) {
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1])).concat(marks.map((m) => m.y));
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = yLog ? [Math.min(...ys) / 1.5, Math.max(...ys) * 1.5] : [0, Math.max(...ys) * 1.1];
  const sx = scale(x0, x1, xLog, PLOT_W, false);
  const sy = scale(y0, y1, yLog, PLOT_H, true);
  const parts = [`<rect width="${PLOT_W}" height="${PLOT_H}" fill="none" stroke="#999"/>`];
  for (const t of ticks(y0, y1, yLog)) {
    parts.push(`<line x1="0" x2="${PLOT_W}" y1="${sy(t)}" y2="${sy(t)}" stroke="#eee"/>`,
               `<text x="-6" y="${sy(t) + 4}" text-anchor="end">${num(t)}</text>`);
  }
  for (const t of [...new Set(xs)].sort((a, b) => a - b)) {
    parts.push(`<line x1="${sx(t)}" x2="${sx(t)}" y1="0" y2="${PLOT_H}" stroke="#eee"/>`,
               `<text x="${sx(t)}" y="${PLOT_H + 16}" text-anchor="middle">${num(t)}</text>`);
  }
  for (const m of marks) {
    parts.push(`<line x1="0" x2="${PLOT_W}" y1="${sy(m.y)}" y2="${sy(m.y)}" stroke="#555" stroke-dasharray="2,3"/>`,
               `<text x="${PLOT_W - 4}" y="${sy(m.y) - 4}" text-anchor="end" fill="#555">${esc(m.label)}</text>`);
  }
  const legend = [];
  series.forEach((s, i) => {
    const color = s.color || COLORS[i % COLORS.length];
    const dash = s.dash ? ' stroke-dasharray="6,4"' : '';
    const pts = s.points.map((p) => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(' ');
    parts.push(`<polyline points="${pts}" fill="none" stroke="${color}" stroke-width="2"${dash}/>`);
    for (const p of s.points) parts.push(`<circle cx="${sx(p[0]).toFixed(1)}" cy="${sy(p[1]).toFixed(1)}" r="3" fill="${color}"/>`);
    legend.push(`<line x1="0" x2="24" y1="${i * 20}" y2="${i * 20}" stroke="${color}" stroke-width="2"${dash}/>`,
                `<text x="30" y="${i * 20 + 4}">${esc(s.name)}</text>`);
  });
  parts.push(`<text x="${PLOT_W / 2}" y="${PLOT_H + 40}" text-anchor="middle">${esc(xLabel)}</text>`,
             `<text transform="translate(-52,${PLOT_H / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`);
  return frame(title, parts.join('\n'), legend.join('\n'));
}

/** groups: category names; series: [{name, values: [number|null per group]}]. */
function barChart({title, yLabel, groups, series}) {
  const max = Math.max(...series.flatMap((s) => s.values.filter((v) => v != null)), 1) * 1.1;
  const sy = scale(0, max, false, PLOT_H, true);
  const groupW = PLOT_W / groups.length;
  const barW = (groupW * 0.8) / series.length;
  const parts = [`<rect width="${PLOT_W}" height="${PLOT_H}" fill="none" stroke="#999"/>`];
  for (const t of ticks(0, max, false)) {
    parts.push(`<line x1="0" x2="${PLOT_W}" y1="${sy(t)}" y2="${sy(t)}" stroke="#eee"/>`,
               `<text x="-6" y="${sy(t) + 4}" text-anchor="end">${num(t)}</text>`);
  }
  groups.forEach((g, gi) => {
    parts.push(`<text x="${gi * groupW + groupW / 2}" y="${PLOT_H + 16}" text-anchor="middle">${esc(g)}</text>`);
    series.forEach((s, si) => {
      const v = s.values[gi];
      if (v == null) return;
      const x = gi * groupW + groupW * 0.1 + si * barW;
      parts.push(`<rect x="${x.toFixed(1)}" y="${sy(v).toFixed(1)}" width="${(barW - 2).toFixed(1)}" ` +
                 `height="${(PLOT_H - sy(v)).toFixed(1)}" fill="${COLORS[si % COLORS.length]}"/>`);
    });
  });
  const legend = series.map((s, i) => `<rect x="0" y="${i * 20 - 8}" width="14" height="12" fill="${COLORS[i % COLORS.length]}"/>` +
                                      `<text x="20" y="${i * 20 + 3}">${esc(s.name)}</text>`);
  parts.push(`<text transform="translate(-52,${PLOT_H / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`);
  return frame(title, parts.join('\n'), legend.join('\n'));
}

module.exports = {lineChart, barChart};
