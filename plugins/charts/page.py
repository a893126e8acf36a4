"""The chart page: one self-contained HTML document (inline script, no fonts, no CDN, no network).

The page is loaded once per browser page; each chart is then drawn by ``draw(data)`` on a canvas
that fills the viewport, and screenshotted. ``draw`` returns how many candles it drew, so the
caller can tell an empty picture from a chart.
"""

PAGE_HTML = r"""<!doctype html>
<html>
<head>
<meta charset="utf-8">
<title>gobot chart</title>
<style>
  html, body { margin: 0; padding: 0; overflow: hidden; }
  canvas { display: block; }
</style>
</head>
<body>
<canvas id="chart"></canvas>
<script>
"use strict";
const THEMES = {
  dark: { bg: "#131722", grid: "#242936", axis: "#363c4e", text: "#d1d4dc", muted: "#8a91a5",
          up: "#26a69a", down: "#ef5350", last: "#f0b90b",
          lines: ["#f7a21b", "#2962ff", "#e040fb", "#00bcd4", "#ffeb3b"], band: "#7e57c2" },
  light: { bg: "#ffffff", grid: "#eef0f4", axis: "#c9ccd6", text: "#131722", muted: "#6a6f7d",
           up: "#089981", down: "#f23645", last: "#c98800",
           lines: ["#ff6d00", "#2962ff", "#aa00ff", "#0097a7", "#827717"], band: "#7e57c2" },
};
const FONT = "12px 'DejaVu Sans', 'Liberation Sans', sans-serif";
const BOLD = "bold 15px 'DejaVu Sans', 'Liberation Sans', sans-serif";

function fmt(value, step) {
  const decimals = Math.max(0, Math.min(8, Math.ceil(-Math.log10(step)) + 1));
  return value.toFixed(decimals);
}

function niceStep(range, ticks) {
  const rough = range / Math.max(1, ticks);
  const power = Math.pow(10, Math.floor(Math.log10(rough)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * power >= rough) return m * power;
  return 10 * power;
}

function timeLabel(ms, withDate) {
  const iso = new Date(ms).toISOString();  // always UTC: the same picture on every machine
  return withDate ? iso.slice(5, 10) + " " + iso.slice(11, 16) : iso.slice(11, 16);
}

function line(ctx, xs, values, toY, color, width) {
  ctx.strokeStyle = color; ctx.lineWidth = width; ctx.beginPath();
  let started = false;
  for (let i = 0; i < values.length; i++) {
    if (values[i] === null) { started = false; continue; }
    const y = toY(values[i]);
    if (started) ctx.lineTo(xs[i], y); else { ctx.moveTo(xs[i], y); started = true; }
  }
  ctx.stroke();
}

function draw(d) {
  const theme = THEMES[d.theme] || THEMES.dark;
  const canvas = document.getElementById("chart");
  canvas.width = d.width; canvas.height = d.height;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = theme.bg; ctx.fillRect(0, 0, d.width, d.height);
  const n = d.t.length;
  if (n === 0) return { candles: 0 };

  const axisW = 78, left = 8, top = 46, bottom = 24;
  const plotW = d.width - left - axisW;
  const oscH = d.oscillators.length ? Math.round((d.height - top - bottom) * 0.16) : 0;
  const volH = Math.round((d.height - top - bottom) * 0.16);
  const gap = 6;
  const priceH = d.height - top - bottom - volH - oscH - gap * (d.oscillators.length ? 2 : 1);
  const priceTop = top, volTop = priceTop + priceH + gap, oscTop = volTop + volH + gap;

  // Price range: candles, overlays and bands all fit.
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < n; i++) { lo = Math.min(lo, d.l[i]); hi = Math.max(hi, d.h[i]); }
  for (const o of d.overlays) for (const v of o.values) if (v !== null) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  for (const b of d.bands) for (let i = 0; i < n; i++) {
    if (b.upper[i] !== null) hi = Math.max(hi, b.upper[i]);
    if (b.lower[i] !== null) lo = Math.min(lo, b.lower[i]);
  }
  if (hi === lo) { hi += 1; lo -= 1; }
  const pad = (hi - lo) * 0.05; hi += pad; lo -= pad;
  const toY = v => priceTop + (hi - v) / (hi - lo) * priceH;

  const slot = plotW / n;
  const bodyW = Math.max(1, Math.floor(slot * 0.7));
  const xs = []; for (let i = 0; i < n; i++) xs.push(left + slot * i + slot / 2);

  // Grid and price axis.
  ctx.font = FONT; ctx.textBaseline = "middle";
  const step = niceStep(hi - lo, 8);
  ctx.strokeStyle = theme.grid; ctx.lineWidth = 1;
  for (let v = Math.ceil(lo / step) * step; v <= hi; v += step) {
    const y = Math.round(toY(v)) + 0.5;
    ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(left + plotW, y); ctx.stroke();
    ctx.fillStyle = theme.muted; ctx.textAlign = "left"; ctx.fillText(fmt(v, step), left + plotW + 6, y);
  }
  // Time axis: about eight labels, with the date where the day changes.
  ctx.textAlign = "center"; ctx.textBaseline = "top";
  const every = Math.max(1, Math.round(n / 8));
  let lastDay = "";
  for (let i = 0; i < n; i += every) {
    const x = Math.round(xs[i]) + 0.5;
    ctx.strokeStyle = theme.grid;
    ctx.beginPath(); ctx.moveTo(x, priceTop); ctx.lineTo(x, d.height - bottom); ctx.stroke();
    const day = new Date(d.t[i]).toISOString().slice(0, 10);
    const label = timeLabel(d.t[i], day !== lastDay), half = ctx.measureText(label).width / 2;
    ctx.fillStyle = theme.muted;
    ctx.fillText(label, Math.min(Math.max(x, left + half), left + plotW - half), d.height - bottom + 5);
    lastDay = day;
  }
  ctx.strokeStyle = theme.axis;
  ctx.strokeRect(left + 0.5, priceTop + 0.5, plotW, priceH);
  ctx.strokeRect(left + 0.5, volTop + 0.5, plotW, volH);

  // Bollinger bands under the candles.
  for (const b of d.bands) {
    ctx.fillStyle = theme.band; ctx.globalAlpha = 0.12; ctx.beginPath();
    let first = -1, last = -1;
    for (let i = 0; i < n; i++) if (b.upper[i] !== null) {
      if (first < 0) { ctx.moveTo(xs[i], toY(b.upper[i])); first = i; } else ctx.lineTo(xs[i], toY(b.upper[i]));
      last = i;
    }
    for (let i = last; i >= first && first >= 0; i--) ctx.lineTo(xs[i], toY(b.lower[i]));
    ctx.closePath(); ctx.fill(); ctx.globalAlpha = 1;
    line(ctx, xs, b.upper, toY, theme.band, 1); line(ctx, xs, b.lower, toY, theme.band, 1);
  }

  // Candles.
  for (let i = 0; i < n; i++) {
    const up = d.c[i] >= d.o[i];
    ctx.strokeStyle = ctx.fillStyle = up ? theme.up : theme.down;
    const x = Math.round(xs[i]);
    ctx.lineWidth = 1;
    ctx.beginPath(); ctx.moveTo(x + 0.5, toY(d.h[i])); ctx.lineTo(x + 0.5, toY(d.l[i])); ctx.stroke();
    const y1 = toY(Math.max(d.o[i], d.c[i])), y2 = toY(Math.min(d.o[i], d.c[i]));
    ctx.fillRect(x - Math.floor(bodyW / 2), Math.round(y1), bodyW, Math.max(1, Math.round(y2 - y1)));
  }
  d.overlays.forEach((o, k) => line(ctx, xs, o.values, toY, theme.lines[k % theme.lines.length], 1.6));

  // Last price marker on the axis.
  const lastClose = d.c[n - 1], ly = toY(lastClose);
  ctx.setLineDash([3, 3]); ctx.strokeStyle = theme.last;
  ctx.beginPath(); ctx.moveTo(left, ly); ctx.lineTo(left + plotW, ly); ctx.stroke(); ctx.setLineDash([]);
  ctx.fillStyle = theme.last; ctx.fillRect(left + plotW + 1, ly - 9, axisW - 2, 18);
  ctx.fillStyle = theme.bg; ctx.textAlign = "left"; ctx.textBaseline = "middle";
  ctx.fillText(fmt(lastClose, step / 10), left + plotW + 6, ly);

  // Volume.
  let vmax = 0; for (const v of d.v) vmax = Math.max(vmax, v);
  for (let i = 0; i < n && vmax > 0; i++) {
    const h = d.v[i] / vmax * (volH - 4);
    ctx.fillStyle = d.c[i] >= d.o[i] ? theme.up : theme.down; ctx.globalAlpha = 0.55;
    ctx.fillRect(Math.round(xs[i]) - Math.floor(bodyW / 2), volTop + volH - h, bodyW, h); ctx.globalAlpha = 1;
  }
  ctx.fillStyle = theme.muted; ctx.textAlign = "left"; ctx.textBaseline = "top";
  ctx.fillText("Volume", left + 6, volTop + 4);

  // Oscillators (RSI) in their own panel.
  for (const o of d.oscillators) {
    ctx.strokeStyle = theme.axis; ctx.strokeRect(left + 0.5, oscTop + 0.5, plotW, oscH);
    const toOy = v => oscTop + (o.max - v) / (o.max - o.min) * oscH;
    ctx.setLineDash([4, 4]); ctx.strokeStyle = theme.muted;
    for (const level of o.levels) {
      const y = Math.round(toOy(level)) + 0.5;
      ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(left + plotW, y); ctx.stroke();
      ctx.fillStyle = theme.muted; ctx.textBaseline = "middle"; ctx.fillText(String(level), left + plotW + 6, y);
    }
    ctx.setLineDash([]);
    line(ctx, xs, o.values, toOy, theme.lines[2], 1.4);
    ctx.fillStyle = theme.muted; ctx.textBaseline = "top"; ctx.fillText(o.label, left + 6, oscTop + 4);
  }

  // Header: what this is, then the legend.
  ctx.textAlign = "left"; ctx.textBaseline = "top";
  ctx.fillStyle = theme.text; ctx.font = BOLD; ctx.fillText(d.title, left + 4, 6);
  ctx.font = FONT; ctx.fillStyle = theme.muted; ctx.fillText(d.subtitle, left + 4, 26);
  let x = left + 4 + Math.max(ctx.measureText(d.subtitle).width + 18, 0);
  d.overlays.forEach((o, k) => {
    ctx.fillStyle = theme.lines[k % theme.lines.length]; ctx.fillText(o.label, x, 26);
    x += ctx.measureText(o.label).width + 14;
  });
  for (const b of d.bands) {
    ctx.fillStyle = theme.band; ctx.fillText(b.label, x, 26); x += ctx.measureText(b.label).width + 14;
  }
  return { candles: n };
}
</script>
</body>
</html>
"""
