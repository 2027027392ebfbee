// Small live line charts in SVG: one figure per metric, a line per series over the last minutes, legend with the
// latest values in text (the chart's text alternative says the same).

import { h } from "./dom.js";

const WIDTH = 400;
const HEIGHT = 120;

/**
 * series: [{label, points: [[t, value]...], className}]; format(value) for the legend; max: the top of the scale (else
 * the data's maximum); windowSeconds: the time span shown, ending now.
 */
export function lineChart({ title, series: allSeries, format, max, binary = false, windowSeconds = 600 }) {
  const now = Date.now() / 1000;
  const start = now - windowSeconds;
  // A series the source does not report at all is left out rather than drawn as "no data".
  const reported = allSeries.filter((s) => s.points.some(([, v]) => Number.isFinite(v)));
  const series = reported.length ? reported : allSeries.slice(0, 1);
  const values = series.flatMap((s) => s.points.map(([, v]) => v)).filter(Number.isFinite);
  const top = max ?? niceCeiling(Math.max(0, ...values), binary ? 1024 : 1000);
  const x = (t) => ((t - start) / windowSeconds) * WIDTH;
  // A line at the top or the bottom of the scale stays inside the plot.
  const y = (v) => HEIGHT - 2 - (top > 0 ? (Math.min(Math.max(v, 0), top) / top) * (HEIGHT - 4) : 0);

  const svg = h("svg:svg", {
    class: "chart-plot",
    attrs: { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, preserveAspectRatio: "none", "aria-hidden": "true", focusable: "false" },
  });
  for (const fraction of [0.25, 0.5, 0.75]) {
    svg.appendChild(h("svg:line", { class: "chart-grid", attrs: { x1: 0, x2: WIDTH, y1: HEIGHT * fraction, y2: HEIGHT * fraction, "vector-effect": "non-scaling-stroke" } }));
  }
  for (const s of series) {
    const points = s.points.filter(([t, v]) => t >= start - 10 && Number.isFinite(v));
    if (points.length === 0) continue;
    const coordinates = points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`);
    if (points.length === 1) coordinates.push(`${(x(points[0][0]) + 2).toFixed(1)},${y(points[0][1]).toFixed(1)}`);
    svg.appendChild(h("svg:polyline", { class: `chart-line ${s.className ?? ""}`.trim(), attrs: { points: coordinates.join(" "), "vector-effect": "non-scaling-stroke" } }));
  }

  const latest = series.map((s) => {
    const last = [...s.points].reverse().find(([, v]) => Number.isFinite(v));
    return { label: s.label, className: s.className, text: last ? format(last[1]) : "no data" };
  });
  const summary = `${title}: ${latest.map((l) => `${l.label} ${l.text}`).join(", ")}`;
  return h("figure", { class: "chart", attrs: { role: "img", "aria-label": summary } },
    h("figcaption", {}, h("span", { class: "chart-title", text: title }), h("span", { class: "chart-scale", attrs: { "aria-hidden": "true" }, text: `scale ${format(top)}` })),
    svg,
    h("ul", { class: "chart-legend", attrs: { "aria-hidden": "true" } },
      latest.map((l) => h("li", {}, h("span", { class: `swatch ${l.className ?? ""}`.trim() }), `${l.label}: ${l.text}`))));
}

/** A round top for the scale: 1, 2, 2.5, 5 times a power of ten, within units of 1000 or of 1024 (bytes). */
function niceCeiling(value, base) {
  if (value <= 0) return 1;
  const unit = base ** Math.max(0, Math.floor(Math.log(value) / Math.log(base)));
  const scaled = value / unit;
  const magnitude = 10 ** Math.floor(Math.log10(scaled));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (scaled <= step * magnitude) return step * magnitude * unit;
  }
  return 10 * magnitude * unit;
}
