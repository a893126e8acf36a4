/* gobot's trade chart: candles, volume, indicators, trade markers, stop/target lines, a trades table and a
 * drill-down panel, on TradingView's lightweight-charts (vendored beside this file, window.LightweightCharts).
 *
 *   const c = GobotTradeChart.mount(element, payload, {height, onTrade: id => ..., theme: "dark" | "light" | "auto"});
 *   await c.ready;  c.setSymbol("ETH/BTC"); c.setTimeframe("1h" | "auto"); c.showTrade(id); c.update(payload);
 *   c.setRange(fromSec, toSec); c.fit(); c.state(); c.countCandles(fromSec, toSec); c.markerPoint(id, "exit");
 *   const e = GobotTradeChart.equity(element, {t: [ms], v: [...], currency, title}); e.update({t, v});
 *   GobotTradeChart.autoMount(id, "trade" | "equity", options)   // what embed() writes: window.gobotCharts[id]
 *
 * The payload comes from gobot_hookspecs.tradechart.chart_payload(); candles arrive in the "gtc1" column encoding
 * (see encoding.py) and are decoded once; each timeframe is aggregated from them on first use and only the bars
 * around the visible range (a few thousand at most) are handed to the library, with the markers of that range.
 * Everything is drawn from the page itself: no request leaves it. Text from the payload is set with textContent.
 * docs/charts.md describes it all.
 */
(function () {
  "use strict";
  if (window.GobotTradeChart) return;
  const LW = window.LightweightCharts;
  const TIMEFRAMES = [["1m", 60], ["3m", 180], ["5m", 300], ["15m", 900], ["30m", 1800], ["1h", 3600],
    ["2h", 7200], ["4h", 14400], ["6h", 21600], ["8h", 28800], ["12h", 43200], ["1d", 86400]];
  const AUTO_BARS = 3000;      // never more bars than this in view (the library draws 2 bars a pixel at most)
  const MAX_LOADED = 6000;     // bars handed to the library at once: the visible ones and 3/4 as many either side
  const MAX_MARKERS = 600;     // beyond this many trades in the loaded range, one marker per bar and kind
  const TABLE_PAGE = 300;      // trades table rows rendered at once ("show more" for the next ones)
  const INDICATOR_COLORS = ["#d6a13a", "#b38cff", "#4cc3d9", "#e58fb4", "#9ccc65", "#f0883e"];

  // ---- decoding -------------------------------------------------------------------------------------------
  function base64Bytes(text) {
    if (Uint8Array.fromBase64) return Uint8Array.fromBase64(text);
    const binary = atob(text), out = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
    return out;
  }

  async function inflate(text) {
    const stream = new Blob([base64Bytes(text)]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  function zigzagColumn(raw, index, n) {
    const base = index * 4 * n, out = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const z = (raw[base + i] | (raw[base + n + i] << 8) | (raw[base + 2 * n + i] << 16) |
        (raw[base + 3 * n + i] << 24)) >>> 0;
      out[i] = (z & 1) ? -(z + 1) / 2 : z / 2;
    }
    return out;
  }

  /** One series of the payload decoded: {symbol, timeframe, step, n, t (s), o, h, l, c, v, decimals, ...}. */
  async function decodeSeries(series) {
    const n = series.count, raw = n ? await inflate(series.data) : new Uint8Array(0);
    const [steps, gap, above, below, change, volume] = [0, 1, 2, 3, 4, 5].map(i => zigzagColumn(raw, i, n));
    const t = new Float64Array(n), o = new Float64Array(n), h = new Float64Array(n), l = new Float64Array(n);
    const c = new Float64Array(n), v = new Float64Array(n);
    // ticks -> prices: x * mul / div, exact either way (decimals < 0: ticks of tens, hundreds...)
    const mul = Math.pow(10, Math.max(0, -series.decimals)), div = Math.pow(10, Math.max(0, series.decimals));
    const vmul = Math.pow(10, Math.max(0, -series.volume_decimals));
    const vdiv = Math.pow(10, Math.max(0, series.volume_decimals));
    let time = series.t0, close = series.c0;
    for (let i = 0; i < n; i++) {
      time += steps[i] * series.unit;
      const open = close + gap[i];
      close += change[i];
      t[i] = time / 1000; o[i] = open * mul / div; c[i] = close * mul / div;
      h[i] = (Math.max(open, close) + above[i]) * mul / div; l[i] = (Math.min(open, close) - below[i]) * mul / div;
      v[i] = volume[i] * vmul / vdiv;
    }
    const step = series.step || 60;
    return {symbol: series.symbol, timeframe: series.timeframe, step, n, t, o, h, l, c, v, decimals: series.decimals,
      indicators: series.indicators || [], first: 0, last: n ? n - 1 : 0, lastIndex: null, cache: new Map()};
  }

  async function decodeTrades(payload) {
    if (Array.isArray(payload.trades)) return payload.trades;
    if (!payload.trades_z) return [];
    return JSON.parse(new TextDecoder().decode(await inflate(payload.trades_z)));
  }

  // ---- aggregation and indicators -------------------------------------------------------------------------
  /** The series in candles of `seconds` (a multiple of its step): same shape, plus lastIndex (base index of
   * each bar's last candle, for sampling the indicators). Cached per series. */
  function aggregate(base, seconds) {
    if (seconds <= base.step) {
      if (!base.lastIndex) base.lastIndex = Int32Array.from({length: base.n}, (_, i) => i);
      return base;
    }
    if (base.cache.has(seconds)) return base.cache.get(seconds);
    const n = base.n, size = Math.min(n, Math.ceil((base.t[n - 1] - base.t[0]) / seconds) + 2);
    const t = new Float64Array(size), o = new Float64Array(size), h = new Float64Array(size);
    const l = new Float64Array(size), c = new Float64Array(size), v = new Float64Array(size);
    const lastIndex = new Int32Array(size);
    let j = -1, bucket = NaN;
    for (let i = 0; i < n; i++) {
      const b = base.t[i] - base.t[i] % seconds;
      if (b !== bucket) {
        bucket = b; j++;
        t[j] = b; o[j] = base.o[i]; h[j] = base.h[i]; l[j] = base.l[i]; v[j] = 0;
      } else {
        if (base.h[i] > h[j]) h[j] = base.h[i];
        if (base.l[i] < l[j]) l[j] = base.l[i];
      }
      c[j] = base.c[i]; v[j] += base.v[i]; lastIndex[j] = i;
    }
    const m = j + 1;
    const out = {t: t.subarray(0, m), o: o.subarray(0, m), h: h.subarray(0, m), l: l.subarray(0, m),
      c: c.subarray(0, m), v: v.subarray(0, m), lastIndex: lastIndex.subarray(0, m), n: m, step: seconds};
    base.cache.set(seconds, out);
    return out;
  }

  function sma(values, period) {
    const out = new Float64Array(values.length).fill(NaN);
    let total = 0;
    for (let i = 0; i < values.length; i++) {
      total += values[i];
      if (i >= period) total -= values[i - period];
      if (i >= period - 1) out[i] = total / period;
    }
    return out;
  }

  function ema(values, period) {
    const out = new Float64Array(values.length).fill(NaN);
    if (values.length < period) return out;
    const alpha = 2 / (period + 1);
    let current = 0;
    for (let i = 0; i < period; i++) current += values[i];
    current /= period;
    out[period - 1] = current;
    for (let i = period; i < values.length; i++) {
      current = alpha * values[i] + (1 - alpha) * current;
      out[i] = current;
    }
    return out;
  }

  function rsiValue(gain, loss) {
    if (loss === 0) return gain > 0 ? 100 : 50;
    return 100 - 100 / (1 + gain / loss);
  }

  /** Wilder's RSI, as gobot_hookspecs.indicators.rsi computes it. */
  function rsi(values, period) {
    const out = new Float64Array(values.length).fill(NaN);
    if (values.length <= period) return out;
    let gain = 0, loss = 0;
    for (let i = 1; i <= period; i++) {
      const change = values[i] - values[i - 1];
      gain += Math.max(change, 0); loss += Math.max(-change, 0);
    }
    gain /= period; loss /= period;
    out[period] = rsiValue(gain, loss);
    for (let i = period + 1; i < values.length; i++) {
      const change = values[i] - values[i - 1];
      gain = (gain * (period - 1) + Math.max(change, 0)) / period;
      loss = (loss * (period - 1) + Math.max(-change, 0)) / period;
      out[i] = rsiValue(gain, loss);
    }
    return out;
  }

  /** Bollinger bands: the SMA and two population standard deviations either side. */
  function bollinger(values, period) {
    const mid = sma(values, period), upper = new Float64Array(values.length).fill(NaN);
    const lower = new Float64Array(values.length).fill(NaN);
    let sum = 0, squares = 0;
    for (let i = 0; i < values.length; i++) {
      sum += values[i]; squares += values[i] * values[i];
      if (i >= period) { sum -= values[i - period]; squares -= values[i - period] * values[i - period]; }
      if (i >= period - 1) {
        const mean = sum / period, spread = 2 * Math.sqrt(Math.max(0, squares / period - mean * mean));
        upper[i] = mean + spread; lower[i] = mean - spread;
      }
    }
    return [upper, mid, lower];
  }

  /** The lines of one indicator spec ("sma:20") on the series' own candles: [{name, values, pane}]. */
  function indicatorLines(base, spec) {
    const [kind, text] = String(spec).split(":"), period = parseInt(text, 10);
    if (!(period > 0)) return [];
    const label = `${kind.toUpperCase()} ${period}`;
    if (kind === "sma") return [{name: label, values: sma(base.c, period), pane: 0}];
    if (kind === "ema") return [{name: label, values: ema(base.c, period), pane: 0}];
    if (kind === "rsi") return [{name: label, values: rsi(base.c, period), pane: 1}];
    if (kind === "bb") {
      const [upper, mid, lower] = bollinger(base.c, period);
      return [{name: `${label} upper`, values: upper, pane: 0, band: true}, {name: label, values: mid, pane: 0},
        {name: `${label} lower`, values: lower, pane: 0, band: true}];
    }
    return [];
  }

  // ---- small helpers --------------------------------------------------------------------------------------
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  /** Index of the first value >= x in a sorted typed array (length when none). */
  function lowerBound(values, x, n) {
    let lo = 0, hi = n === undefined ? values.length : n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (values[mid] < x) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  /** Index of the first value > x in a sorted typed array. */
  function upperBound(values, x) {
    let lo = 0, hi = values.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (values[mid] <= x) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  function formatTime(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    return new Date(seconds * 1000).toISOString().slice(0, 16).replace("T", " ");
  }

  /** Decimals shown for a series' prices: its ticks', but no more than give 7 significant digits of its largest
   * price (64000.00, 3334.380, 0.00001234): an axis is not read further, and synthetic prices have many. */
  function displayDigits(series) {
    let largest = 0;
    for (let i = 0; i < series.n; i += Math.max(1, Math.floor(series.n / 1000))) largest = Math.max(largest, series.h[i]);
    const whole = largest > 0 ? Math.floor(Math.log10(largest)) + 1 : 1;
    return Math.max(0, Math.min(series.decimals, 7 - whole, 10));
  }

  function formatNumber(value, digits) {
    if (value === null || value === undefined || Number.isNaN(value)) return "—";
    const size = Math.abs(value);
    const places = digits !== undefined ? digits : size >= 1000 ? 2 : size >= 1 ? 4 : 6;
    return value.toLocaleString("en-US", {minimumFractionDigits: Math.min(places, 2), maximumFractionDigits: places});
  }

  function formatMoney(value, currency) {
    if (value === null || value === undefined) return "—";
    const sign = value > 0 ? "+" : "";
    return `${sign}${formatNumber(value, 2)} ${currency || ""}`.trim();
  }

  function timeframeName(seconds) {
    const found = TIMEFRAMES.concat([["3d", 259200], ["1w", 604800], ["1M", 2592000]]).find(([, s]) => s === seconds);
    if (found) return found[0];
    return seconds % 86400 === 0 ? `${seconds / 86400}d` : seconds % 3600 === 0 ? `${seconds / 3600}h`
      : `${Math.round(seconds / 60)}m`;
  }

  function palette(element) {
    const style = getComputedStyle(element), read = (name, fallback) => style.getPropertyValue(name).trim() || fallback;
    return {bg: read("--gtc-bg", "#0f1419"), panel: read("--gtc-panel", "#171d24"), line: read("--gtc-line", "#27303a"),
      text: read("--gtc-text", "#d8dee6"), muted: read("--gtc-muted", "#8a96a3"), green: read("--gtc-green", "#3fb97b"),
      red: read("--gtc-red", "#e5534b"), amber: read("--gtc-amber", "#d6a13a"), blue: read("--gtc-blue", "#4c9be8")};
  }

  function chartOptions(colors) {
    return {
      autoSize: true,
      layout: {background: {type: "solid", color: colors.bg}, textColor: colors.muted, fontSize: 12,
        fontFamily: "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
        panes: {separatorColor: colors.line, separatorHoverColor: colors.line}},
      grid: {vertLines: {color: colors.line + "66"}, horzLines: {color: colors.line + "66"}},
      rightPriceScale: {borderColor: colors.line},
      timeScale: {borderColor: colors.line, timeVisible: true, secondsVisible: false, rightOffset: 4},
      crosshair: {mode: 0},
    };
  }


  /** A select's options as [value, text] pairs, left alone when they are the same (an open list stays open). */
  function setOptions(select, pairs) {
    const same = select.options.length === pairs.length &&
      pairs.every(([value], i) => select.options[i].value === value);
    if (!same) select.replaceChildren(...pairs.map(([value, text]) => new Option(text, value)));
  }

  function themeOf(element, theme) {
    element.classList.remove("gtc-dark", "gtc-light", "gtc-auto");
    element.classList.add(`gtc-${theme === "light" || theme === "auto" ? theme : "dark"}`);
  }

  /** Follow the system's colour scheme when the theme is "auto". */
  function followScheme(element, chart) {
    if (!element.classList.contains("gtc-auto") || !window.matchMedia) return;
    window.matchMedia("(prefers-color-scheme: light)").addEventListener("change", () => {
      chart.applyOptions(chartOptions(palette(element)));
    });
  }

  // ---- the trade chart ------------------------------------------------------------------------------------
  class TradeChart {
    constructor(element, payload, options) {
      this.element = element;
      this.options = options || {};
      this.currency = payload.currency || "";
      this.series = new Map();
      this.trades = [];
      this.tradesById = new Map();
      this.symbolTrades = [];
      this.symbol = null;
      this.mode = "auto";
      this.timeframes = [];
      this.view = null;
      this.loaded = null;
      this.selected = null;
      this.priceLines = [];
      this.lines = [];
      this.markerBars = new Map();
      this.markerCount = 0;
      this.tableLimit = TABLE_PAGE;
      this.applying = false;
      this.pending = 0;
      themeOf(element, this.options.theme || payload.theme || "dark");
      this.build(payload);
      this.ready = this.load(payload, false).then(() => this);
    }

    build(payload) {
      const root = this.element, colors = palette(root);
      root.classList.add("gtc");
      root.replaceChildren();
      const bar = el("div", "gtc-toolbar");
      this.titleNode = el("span", "gtc-title", payload.title || "");
      this.symbolSelect = el("select", "gtc-symbol");
      this.symbolSelect.setAttribute("aria-label", "symbol");
      this.timeframeSelect = el("select", "gtc-timeframe");
      this.timeframeSelect.setAttribute("aria-label", "timeframe");
      const fit = el("button", "gtc-fit", "Fit");
      fit.type = "button";
      fit.title = "show everything";
      this.legend = el("span", "gtc-legend");
      bar.append(this.titleNode, this.symbolSelect, this.timeframeSelect, fit, this.legend);
      this.chartBox = el("div", "gtc-chart");
      this.chartBox.style.height = `${this.options.height || 560}px`;
      this.emptyNote = el("div", "gtc-empty-note", "no candles to draw");
      this.emptyNote.hidden = true;
      this.chartBox.append(this.emptyNote);
      const below = el("div", "gtc-below");
      this.tableBox = el("div", "gtc-trades");
      this.panel = el("aside", "gtc-drilldown");
      this.panel.hidden = true;
      below.append(this.tableBox, this.panel);
      root.append(bar, this.chartBox, below);
      this.chart = LW.createChart(this.chartBox, chartOptions(colors));
      this.colors = colors;
      this.candle = this.chart.addSeries(LW.CandlestickSeries, {upColor: colors.green, downColor: colors.red,
        borderVisible: false, wickUpColor: colors.green, wickDownColor: colors.red,
        autoscaleInfoProvider: original => this.withSelectedLines(original())});
      this.volume = this.chart.addSeries(LW.HistogramSeries, {priceScaleId: "volume", priceFormat: {type: "volume"},
        lastValueVisible: false, priceLineVisible: false});
      this.chart.priceScale("volume").applyOptions({scaleMargins: {top: 0.82, bottom: 0}});
      this.candle.priceScale().applyOptions({scaleMargins: {top: 0.06, bottom: 0.2}});
      this.markers = LW.createSeriesMarkers(this.candle, []);
      followScheme(root, this.chart);
      this.listen(fit);
    }

    listen(fit) {
      this.symbolSelect.addEventListener("change", () => this.setSymbol(this.symbolSelect.value));
      this.timeframeSelect.addEventListener("change", () => this.setTimeframe(this.timeframeSelect.value));
      fit.addEventListener("click", () => this.fit());
      this.chart.timeScale().subscribeVisibleLogicalRangeChange(range => this.onRange(range));
      this.chart.subscribeClick(param => this.onClick(param));
      this.chart.subscribeDblClick(param => this.onClick(param));  // a second click soon after the first
      this.chart.subscribeCrosshairMove(param => this.showLegend(param));
    }

    async load(payload, keepView) {
      const decoded = await Promise.all((payload.series || []).map(decodeSeries));
      const trades = await decodeTrades(payload);
      const followLatest = keepView && this.view && this.base && this.view.to >= this.base.t[this.base.n - 1];
      this.currency = payload.currency || this.currency;
      if (payload.title !== undefined) this.titleNode.textContent = payload.title;
      this.series = new Map(decoded.map(s => [s.symbol, s]));
      this.trades = trades;
      this.tradesById = new Map(trades.map(t => [String(t.id), t]));
      setOptions(this.symbolSelect, decoded.map(s => [s.symbol, s.symbol]));
      this.symbolSelect.hidden = decoded.length < 2;
      const first = (decoded[0] || {}).symbol;
      const wanted = keepView && this.series.has(this.symbol) ? this.symbol : (payload.symbol || first);
      const symbol = this.series.has(wanted) ? wanted : first;
      const base = this.series.get(symbol);
      if (followLatest && symbol === this.symbol && base && base.n) {  // the view follows the newest candle
        const end = base.t[base.n - 1] + base.step, span = this.view.to - this.view.from;
        this.view = {from: end - span, to: end};
      }
      this.useSymbol(symbol, keepView && symbol === this.symbol);
      if (this.selected) {  // the open drill-down shows the trade as it is now (an open position may have closed)
        const selected = this.tradesById.get(String(this.selected.id));
        if (!selected) this.closeTrade();
        else if (JSON.stringify(selected) !== JSON.stringify(this.selected)) this.openTrade(selected.id, false);
        else this.selected = selected;
      }
      this.refreshLines();
    }

    useSymbol(symbol, keepView) {
      this.symbol = symbol || null;
      this.base = this.series.get(symbol) || null;
      if (this.symbol) this.symbolSelect.value = this.symbol;
      this.symbolTrades = this.trades.filter(t => t.symbol === symbol).sort((x, y) => x.entry - y.entry);
      this.buildTimeframes();
      this.buildIndicators();
      if (this.base) {
        const digits = displayDigits(this.base);
        this.candle.applyOptions({priceFormat: {type: "price", precision: digits, minMove: Math.pow(10, -digits)}});
      }
      if (!keepView || !this.view) this.view = this.fullView();
      this.loaded = null;
      this.render(true);
      if (!keepView) this.tableLimit = TABLE_PAGE;
      this.renderTable();
    }

    fullView() {
      const base = this.base;
      if (!base || !base.n) return {from: 0, to: 1};
      return {from: base.t[0], to: base.t[base.n - 1] + base.step};
    }

    buildTimeframes() {
      const step = this.base ? this.base.step : 60;
      this.timeframes = TIMEFRAMES.filter(([, s]) => s >= step && s % step === 0).map(([, s]) => s);
      if (!this.timeframes.length) this.timeframes = [step];
      if (this.mode !== "auto" && !this.timeframes.includes(this.mode)) this.mode = "auto";
      setOptions(this.timeframeSelect, [["auto", "auto"]].concat(this.timeframes.map(s => [timeframeName(s),
        timeframeName(s)])));
      this.timeframeSelect.value = this.mode === "auto" ? "auto" : timeframeName(this.mode);
    }

    /** A line series per indicator line; on an update with the same indicators, the series stay (new values). */
    buildIndicators() {
      if (this.base && !this.base.lines) {
        this.base.lines = this.base.indicators.flatMap(spec => indicatorLines(this.base, spec));
      }
      const wanted = this.base ? this.base.lines : [];
      if (wanted.length && wanted.map(l => l.name).join("|") === this.lines.map(l => l.name).join("|")) {
        this.lines = this.lines.map((line, i) => ({...line, values: wanted[i].values}));
        return;
      }
      for (const line of this.lines) this.chart.removeSeries(line.series);
      this.lines = [];
      if (!this.base) return;
      let colorIndex = 0;
      for (const line of this.base.lines) {
        const color = line.pane ? this.colors.blue : INDICATOR_COLORS[colorIndex++ % INDICATOR_COLORS.length];
        const series = this.chart.addSeries(LW.LineSeries, {color: line.band ? this.colors.muted : color,
          lineWidth: line.band ? 1 : 2, lineStyle: line.band ? 2 : 0, priceLineVisible: false, lastValueVisible: false,
          crosshairMarkerVisible: false, title: line.name}, line.pane);
        if (line.pane) {
          series.createPriceLine({price: 70, color: this.colors.red, lineStyle: 2, lineWidth: 1, axisLabelVisible: false});
          series.createPriceLine({price: 30, color: this.colors.green, lineStyle: 2, lineWidth: 1, axisLabelVisible: false});
        }
        this.lines.push({...line, series});
      }
      const panes = this.chart.panes();
      if (panes.length > 1) { panes[0].setStretchFactor(3); panes[1].setStretchFactor(1); }
    }

    /** Most bars in view: "auto" keeps to one bar a pixel of the chart's width (so zooming out, which the
     * library stops at two bars a pixel, always reaches the next timeframe); a chosen timeframe to two. */
    barLimit(auto) {
      const width = this.chartBox.clientWidth || 1000;
      return Math.max(50, Math.min(AUTO_BARS, Math.floor(width * (auto ? 1 : 2))));
    }

    /** "auto": the finest timeframe that draws the view within the bar limit. */
    autoTimeframe(view) {
      const span = view.to - view.from, limit = this.barLimit(true);
      for (const seconds of this.timeframes) if (span / seconds <= limit) return seconds;
      return this.timeframes[this.timeframes.length - 1];
    }

    /** Draw the view: the timeframe it needs, and the bars around it when the loaded ones do not cover it. */
    render(force) {
      const base = this.base;
      this.emptyNote.hidden = Boolean(base && base.n);
      if (!base || !base.n) { this.clear(); return; }
      const tf = this.mode === "auto" ? this.autoTimeframe(this.view) : this.mode;
      const agg = aggregate(base, tf);
      let i0 = lowerBound(agg.t, this.view.from), i1 = lowerBound(agg.t, this.view.to);
      const limit = this.barLimit(this.mode === "auto");
      if (i1 - i0 > limit) {  // a fine timeframe chosen by hand over a long view: show its middle
        const middle = (this.view.from + this.view.to) / 2, half = limit * tf / 2;
        this.view = {from: middle - half, to: middle + half};
        i0 = lowerBound(agg.t, this.view.from); i1 = lowerBound(agg.t, this.view.to);
      }
      this.updateTimeframeLabel(tf);
      const L = this.loaded, margin = Math.max(1, (i1 - i0) / 4);
      if (!force && L && L.agg === agg && (L.a === 0 || i0 >= L.a + margin) && (L.b === agg.n || i1 <= L.b - margin)) {
        return;
      }
      const span = Math.ceil(Math.max(i1 - i0, 100) * 0.75);
      let a = Math.max(0, i0 - span), b = Math.min(agg.n, i1 + span);
      if (b - a > MAX_LOADED) {
        const extra = Math.max(0, Math.floor((MAX_LOADED - (i1 - i0)) / 2));
        a = Math.max(0, i0 - extra); b = Math.min(agg.n, i1 + extra);
      }
      this.applying = true;
      try {
        this.setBars(agg, a, b, tf);
        this.loaded = {agg, a, b, tf};
        this.setMarkers();
        this.chart.timeScale().setVisibleLogicalRange({from: this.logicalOf(this.view.from) - 0.5,
          to: this.logicalOf(this.view.to) - 0.5});
      } finally {
        this.applying = false;
      }
    }

    clear() {
      this.candle.setData([]); this.volume.setData([]);
      for (const line of this.lines) line.series.setData([]);
      this.markers.setMarkers([]);
      this.loaded = null; this.markerCount = 0;
    }

    setBars(agg, a, b) {
      const candles = new Array(b - a), volumes = new Array(b - a);
      const up = this.colors.green + "66", down = this.colors.red + "66";
      for (let i = a; i < b; i++) {
        const time = agg.t[i];
        candles[i - a] = {time, open: agg.o[i], high: agg.h[i], low: agg.l[i], close: agg.c[i]};
        volumes[i - a] = {time, value: agg.v[i], color: agg.c[i] >= agg.o[i] ? up : down};
      }
      this.candle.setData(candles);
      this.volume.setData(volumes);
      for (const line of this.lines) {
        const data = [];
        for (let i = a; i < b; i++) {
          const value = line.values[agg.lastIndex[i]];
          if (!Number.isNaN(value)) data.push({time: agg.t[i], value});
        }
        line.series.setData(data);
      }
    }

    /** Bar position of a time among the loaded bars (fractional within a bar; extrapolated past the ends). */
    logicalOf(time) {
      const {agg, a, b, tf} = this.loaded, index = lowerBound(agg.t, time, b);
      if (index <= a) return (time - agg.t[a]) / tf;
      const k = index - 1;
      return k - a + Math.min(1, (time - agg.t[k]) / tf);
    }

    timeOf(logical) {
      const {agg, a, b, tf} = this.loaded, k = Math.floor(logical) + a;
      if (k < a) return agg.t[a] + (logical) * tf;
      if (k >= b) return agg.t[b - 1] + (logical - (b - 1 - a)) * tf;
      return agg.t[k] + (logical - (k - a)) * tf;
    }

    onRange(range) {
      if (this.applying || !range || !this.loaded) return;
      this.view = {from: this.timeOf(range.from + 0.5), to: this.timeOf(range.to + 0.5)};
      if (!this.pending) this.pending = requestAnimationFrame(() => { this.pending = 0; this.render(false); });
    }

    updateTimeframeLabel(tf) {
      this.tf = tf;
      const auto = this.timeframeSelect.options[0];
      if (auto) auto.textContent = this.mode === "auto" ? `auto (${timeframeName(tf)})` : "auto";
    }

    /** The bar (open time) of the loaded bars that holds `time`. */
    barOf(time) {
      const {agg, a, b} = this.loaded, index = lowerBound(agg.t, time, b);
      if (index < b && agg.t[index] === time) return agg.t[index];
      return agg.t[Math.max(a, index - 1)];
    }

    /** One marker per entry and one per exit of the loaded range (one per bar and kind when too many). */
    setMarkers() {
      const {agg, a, b, tf} = this.loaded, from = agg.t[a], to = agg.t[b - 1] + tf;
      const inside = time => time !== null && time !== undefined && time >= from && time < to;
      const events = [];
      for (const trade of this.symbolTrades) {
        if (inside(trade.entry)) events.push({trade, kind: "entry", time: this.barOf(trade.entry)});
        if (inside(trade.exit)) events.push({trade, kind: "exit", time: this.barOf(trade.exit)});
      }
      this.markerBars = new Map();
      for (const event of events) {
        if (!this.markerBars.has(event.time)) this.markerBars.set(event.time, []);
        this.markerBars.get(event.time).push(event);
      }
      const list = events.length > MAX_MARKERS ? this.groupedMarkers(events) : events.map(e => this.marker(e, events.length));
      list.sort((x, y) => x.time - y.time);
      this.markers.setMarkers(list);
      this.markerCount = list.length;
      this.tradesInRange = new Set(events.map(e => e.trade.id)).size;
    }

    marker(event, total) {
      const {trade, kind, time} = event, long = trade.side !== "short", c = this.colors;
      const label = total <= 60;
      if (kind === "entry") {
        return {time, id: `${trade.id}|entry`, price: trade.entry_price, position: long ? "atPriceBottom" : "atPriceTop",
          shape: long ? "arrowUp" : "arrowDown", color: long ? c.blue : c.amber, text: label ? (long ? "L" : "S") : ""};
      }
      const won = (trade.pnl || 0) >= 0;
      return {time, id: `${trade.id}|exit`, price: trade.exit_price, position: "atPriceMiddle", shape: "circle",
        color: won ? c.green : c.red, text: label && trade.pnl !== null ? formatMoney(trade.pnl, "") : ""};
    }

    /** Too many trades for one marker each: one entry and one exit marker per group of `k` bars, the count as
     * their text, the exit coloured by the group's net result. */
    groupedMarkers(events) {
      const {agg, a, b} = this.loaded, c = this.colors, k = Math.max(1, Math.ceil(2 * events.length / MAX_MARKERS));
      const groups = new Map();
      for (const event of events) {
        const index = lowerBound(agg.t, event.time, b), group = Math.floor((index - a) / k);
        const key = `${group}|${event.kind}`;
        if (!groups.has(key)) groups.set(key, {time: agg.t[a + group * k], kind: event.kind, events: []});
        groups.get(key).events.push(event);
      }
      const list = [];
      for (const {time, kind, events: members} of groups.values()) {
        const first = members[0].trade.id, text = members.length > 1 ? String(members.length) : "";
        if (kind === "entry") {
          list.push({time, id: `${first}|entry`, position: "belowBar", shape: "arrowUp", color: c.blue, text});
        } else {
          const pnl = members.reduce((sum, e) => sum + (e.trade.pnl || 0), 0);
          list.push({time, id: `${first}|exit`, position: "aboveBar", shape: "circle", color: pnl >= 0 ? c.green : c.red,
            text});
        }
      }
      return list;
    }

    /** A click on a marker (or on a bar holding markers: the one nearest the click) opens that trade. */
    onClick(param) {
      const marked = this.markerTrade(param);
      if (marked) { this.openTrade(String(marked.trade.id)); return; }
      if (param.time === undefined || !param.point) return;
      const events = this.markerBars.get(param.time);
      if (!events || !events.length) return;
      const price = this.candle.coordinateToPrice(param.point.y);
      const at = e => (e.kind === "entry" ? e.trade.entry_price : e.trade.exit_price);
      const nearest = events.reduce((best, e) => (Math.abs(at(e) - price) < Math.abs(at(best) - price) ? e : best));
      this.openTrade(String(nearest.trade.id));
    }

    /** The trade id of a marker's object id ("<id>|entry"), or null. */
    markerTrade(param) {
      const hovered = param && ((param.hoveredInfo && param.hoveredInfo.objectId) || param.hoveredObjectId);
      if (typeof hovered !== "string" || !hovered.includes("|")) return null;
      const trade = this.tradesById.get(hovered.slice(0, hovered.lastIndexOf("|")));
      return trade ? {trade, kind: hovered.slice(hovered.lastIndexOf("|") + 1)} : null;
    }

    /** The crosshair's candle, or the trade of the marker under the mouse, top right. */
    showLegend(param) {
      const marked = this.markerTrade(param);
      this.chartBox.style.cursor = marked ? "pointer" : "";
      if (marked) {
        const {trade, kind} = marked, pnl = kind === "exit" ? ` ${formatMoney(trade.pnl, this.currency)}` : "";
        this.legend.textContent = `trade ${trade.id} · ${trade.side} ${kind}${pnl} · click for why`;
        return;
      }
      const data = param && param.time !== undefined ? param.seriesData.get(this.candle) : null;
      if (!data) { this.legend.textContent = ""; return; }
      const f = v => formatNumber(v, displayDigits(this.base));
      this.legend.textContent = `${formatTime(data.time)} O ${f(data.open)} H ${f(data.high)} L ${f(data.low)} ` +
        `C ${f(data.close)}`;
    }

    /** The price range the chart scales to, widened to the selected trade's stop and target. */
    withSelectedLines(info) {
      const trade = this.selected;
      if (!info || !info.priceRange || !trade || trade.symbol !== this.symbol) return info;
      const prices = [trade.stop, trade.target].filter(p => typeof p === "number");
      if (!prices.length) return info;
      return {...info, priceRange: {minValue: Math.min(info.priceRange.minValue, ...prices),
        maxValue: Math.max(info.priceRange.maxValue, ...prices)}};
    }

    /** Stop and target (and entry) lines of the selected trade, stop and target of every open position. */
    refreshLines() {
      for (const line of this.priceLines) this.candle.removePriceLine(line);
      this.priceLines = [];
      const c = this.colors, add = (price, color, title, style) => {
        if (price === null || price === undefined) return;
        this.priceLines.push(this.candle.createPriceLine({price, color, title, lineStyle: style, lineWidth: 1,
          axisLabelVisible: true}));
      };
      const open = this.symbolTrades.filter(t => t.exit === null || t.exit === undefined).slice(-20);
      for (const trade of open) {
        if (this.selected && trade.id === this.selected.id) continue;
        const side = trade.side === "short" ? "short" : "long";  // the axis label stays short: the table names the trade
        add(trade.stop, c.red, `${side} stop`, 2);
        add(trade.target, c.green, `${side} target`, 2);
      }
      const trade = this.selected;
      if (trade && trade.symbol === this.symbol) {
        add(trade.entry_price, c.blue, "entry", 1);
        add(trade.stop, c.red, "stop", 2);
        add(trade.target, c.green, "target", 2);
      }
      this.candle.priceScale().applyOptions({autoScale: true});  // rescale to the lines just chosen
    }

    // ---- trades table and drill-down ------------------------------------------------------------------
    renderTable() {
      const box = this.tableBox, currency = this.currency, rows = this.symbolTrades.slice().reverse();
      const scrolled = box.scrollTop;
      box.replaceChildren();
      const head = el("div", "gtc-trades-head");
      head.append(el("h3", "", "Trades"), el("span", "gtc-muted",
        `${rows.length.toLocaleString("en-US")} on ${this.symbol || "—"}, newest first`));
      const table = el("table", "gtc-table"), thead = el("thead"), tr = el("tr"), body = el("tbody");
      for (const name of ["Entry (UTC)", "Side", "Entry", "Exit (UTC)", "Exit", `P&L (${currency})`, "Reason"]) {
        tr.append(el("th", "", name));
      }
      thead.append(tr);
      table.append(thead, body);
      for (const trade of rows.slice(0, this.tableLimit)) body.append(this.tradeRow(trade));
      box.append(head, table);
      if (rows.length > this.tableLimit) {
        const more = el("button", "gtc-more", `Show ${Math.min(TABLE_PAGE, rows.length - this.tableLimit)} more of ` +
          `${rows.length - this.tableLimit}`);
        more.type = "button";
        more.addEventListener("click", () => { this.tableLimit += TABLE_PAGE; this.renderTable(); });
        box.append(more);
      }
      if (!rows.length) {
        const empty = el("tr", "gtc-empty"), cell = el("td", "", "no trades");
        cell.colSpan = 7;
        empty.append(cell);
        body.append(empty);
      }
      box.scrollTop = scrolled;
    }

    tradeRow(trade) {
      const row = el("tr", "gtc-trade");
      row.dataset.tradeId = trade.id;
      if (this.selected && this.selected.id === trade.id) row.classList.add("gtc-selected");
      const pnl = el("td", trade.pnl > 0 ? "gtc-pos" : trade.pnl < 0 ? "gtc-neg" : "",
        trade.pnl === null || trade.pnl === undefined ? "open" : formatMoney(trade.pnl, ""));
      row.append(el("td", "", formatTime(trade.entry)), el("td", `gtc-side gtc-${trade.side}`, trade.side),
        el("td", "", formatNumber(trade.entry_price)), el("td", "", formatTime(trade.exit)),
        el("td", "", formatNumber(trade.exit_price)), pnl, el("td", "gtc-text", trade.exit_reason || ""));
      row.tabIndex = 0;
      row.addEventListener("click", () => this.showTrade(trade.id));
      row.addEventListener("keydown", event => { if (event.key === "Enter") this.showTrade(trade.id); });
      return row;
    }

    /** Move the chart to a trade and open its drill-down. */
    showTrade(id) {
      const trade = this.tradesById.get(String(id));
      if (!trade) return false;
      if (trade.symbol !== this.symbol && this.series.has(trade.symbol)) this.useSymbol(trade.symbol, false);
      if (this.base && this.base.n) {
        const last = this.base.t[this.base.n - 1] + this.base.step;
        const end = trade.exit === null || trade.exit === undefined ? last : trade.exit;
        const pad = Math.max(end - trade.entry, this.base.step * 20) * 1.5;
        this.view = {from: trade.entry - pad, to: end + pad};
        this.render(true);
      }
      this.openTrade(String(id));
      return true;
    }

    openTrade(id, notify = true) {
      const trade = this.tradesById.get(String(id));
      if (!trade) return;
      this.selected = trade;
      this.refreshLines();
      this.renderDrilldown(trade);
      let row = this.tableBox.querySelector(`tr.gtc-trade[data-trade-id="${CSS.escape(String(id))}"]`);
      if (!row && trade.symbol === this.symbol) {
        this.tableLimit = this.symbolTrades.length;
        this.renderTable();
        row = this.tableBox.querySelector(`tr.gtc-trade[data-trade-id="${CSS.escape(String(id))}"]`);
      }
      for (const other of this.tableBox.querySelectorAll("tr.gtc-selected")) other.classList.remove("gtc-selected");
      if (row) row.classList.add("gtc-selected");
      if (row && notify) row.scrollIntoView({block: "nearest"});
      if (notify && this.options.onTrade) this.options.onTrade(trade.id);
    }

    renderDrilldown(trade) {
      const panel = this.panel, currency = trade.currency || this.currency;
      const scrolled = panel.dataset.tradeId === String(trade.id) ? panel.scrollTop : 0;
      panel.replaceChildren();
      panel.hidden = false;
      panel.dataset.tradeId = trade.id;
      const head = el("div", "gtc-drill-head"), close = el("button", "gtc-close", "×");
      close.type = "button";
      close.setAttribute("aria-label", "close");
      close.addEventListener("click", () => this.closeTrade());
      head.append(el("h3", "", `Trade ${trade.id}`), el("span", `gtc-side gtc-${trade.side}`, trade.side),
        el("span", "gtc-muted", trade.symbol), close);
      panel.append(head, this.summary(trade, currency));
      panel.append(this.section("Signal", this.signalBlock(trade)), this.section("Risk", this.verdictList(trade)));
      panel.append(this.section("Sizing", el("p", "gtc-sizing", trade.sizing || "not recorded")));
      panel.append(this.section("Fills", this.fillTable(trade, currency)));
      const images = (trade.images || []).filter(src => /^data:image\/(png|jpeg|webp|gif);base64,/.test(src));
      if (images.length || (trade.answer !== null && trade.answer !== undefined)) {
        const box = el("div", "gtc-vision");
        for (const src of images) {
          const img = el("img", "gtc-image");
          img.src = src;
          img.alt = "chart the model saw";
          box.append(img);
        }
        if (trade.answer !== null && trade.answer !== undefined) box.append(el("pre", "gtc-answer", trade.answer));
        panel.append(this.section("Vision", box));
      }
      panel.scrollTop = scrolled;
    }

    closeTrade() {
      this.selected = null;
      this.panel.hidden = true;
      delete this.panel.dataset.tradeId;
      this.refreshLines();
      for (const row of this.tableBox.querySelectorAll("tr.gtc-selected")) row.classList.remove("gtc-selected");
    }

    section(title, body) {
      const box = el("section", "gtc-section");
      box.append(el("h4", "", title), body);
      return box;
    }

    summary(trade, currency) {
      const list = el("dl", "gtc-summary");
      const exit = trade.exit === null || trade.exit === undefined ? "open"
        : `${formatTime(trade.exit)} at ${formatNumber(trade.exit_price)}${trade.exit_reason ? ` (${trade.exit_reason})` : ""}`;
      const rows = [["Entry", `${formatTime(trade.entry)} at ${formatNumber(trade.entry_price)}`], ["Exit", exit],
        ["Amount", formatNumber(trade.amount)], [`P&L`, formatMoney(trade.pnl, currency)],
        ["Fees", `${formatNumber(trade.fees, 4)} ${currency}`.trim()], ["Stop", formatNumber(trade.stop)],
        ["Target", formatNumber(trade.target)]];
      if (trade.strategy) rows.push(["Strategy", trade.strategy + (trade.strategy_version ? ` v${trade.strategy_version}` : "")]);
      for (const [name, value] of rows) {
        const dd = el("dd", name === "P&L" ? (trade.pnl > 0 ? "gtc-pos" : trade.pnl < 0 ? "gtc-neg" : "") : "", value);
        list.append(el("dt", "", name), dd);
      }
      return list;
    }

    signalBlock(trade) {
      const box = el("div", "gtc-signal"), signal = trade.signal;
      if (!signal) { box.append(el("p", "gtc-muted", "no signal recorded")); return box; }
      const confidence = typeof signal.confidence === "number" ? `${Math.round(signal.confidence * 100)}%` : "—";
      const meta = [signal.source, signal.action, `confidence ${confidence}`, signal.timeframe,
        signal.time ? formatTime(signal.time) : null].filter(Boolean).join(" · ");
      box.append(el("p", "gtc-signal-meta", meta), el("p", "gtc-rationale", signal.rationale || "no rationale given"));
      return box;
    }

    verdictList(trade) {
      const list = el("ul", "gtc-verdicts"), verdicts = trade.verdicts || [];
      for (const verdict of verdicts) {
        const item = el("li", `gtc-verdict ${verdict.approved ? "gtc-approved" : "gtc-vetoed"}`);
        item.dataset.plugin = verdict.plugin;
        item.append(el("span", "gtc-badge", verdict.approved ? "approved" : "vetoed"), el("b", "", verdict.plugin),
          el("span", "", verdict.reason ? ` ${verdict.reason}` : ""));
        list.append(item);
      }
      if (!verdicts.length) list.append(el("li", "gtc-muted", "no verdicts recorded"));
      return list;
    }

    fillTable(trade, currency) {
      const table = el("table", "gtc-table gtc-fills"), head = el("tr");
      for (const name of ["Time (UTC)", "Fill", "Price", "Amount", `Fee (${currency})`, "Commissions", "Reason"]) {
        head.append(el("th", "", name));
      }
      table.append(head);
      for (const fill of trade.fills || []) {
        const row = el("tr", "gtc-fill"), commissions = Object.entries(fill.commissions || {})
          .map(([asset, amount]) => `${formatNumber(amount, 8)} ${asset}`).join(", ");
        row.append(el("td", "", formatTime(fill.time)), el("td", "gtc-text", `${fill.purpose} · ${fill.side}`),
          el("td", "", formatNumber(fill.price)), el("td", "", formatNumber(fill.amount)),
          el("td", "", formatNumber(fill.fee, 6)), el("td", "", commissions || "—"), el("td", "gtc-text", fill.reason || ""));
        table.append(row);
      }
      if (!(trade.fills || []).length) {
        const row = el("tr", "gtc-empty"), cell = el("td", "", "no fills recorded");
        cell.colSpan = 7;
        row.append(cell);
        table.append(row);
      }
      return table;
    }

    // ---- controller methods ---------------------------------------------------------------------------
    setSymbol(symbol) {
      if (!this.series.has(symbol)) return false;
      this.useSymbol(symbol, false);
      this.refreshLines();
      return true;
    }

    setTimeframe(name) {
      if (name === "auto") this.mode = "auto";
      else {
        const found = TIMEFRAMES.find(([n]) => n === name);
        if (!found || !this.timeframes.includes(found[1])) return false;
        this.mode = found[1];
      }
      this.timeframeSelect.value = name;
      this.render(true);
      return true;
    }

    /** Show [from, to] (seconds), at the timeframe "auto" picks for it or the one chosen. */
    setRange(from, to) {
      if (!(to > from)) return false;
      this.view = {from, to};
      this.render(true);
      return true;
    }

    fit() {
      this.view = this.fullView();
      this.render(true);
    }

    state() {
      const L = this.loaded;
      return {symbol: this.symbol, timeframe: L ? timeframeName(L.tf) : null, auto: this.mode === "auto",
        barsDrawn: L ? L.b - L.a : 0, barsVisible: L ? Math.max(0, lowerBound(L.agg.t, this.view.to) - lowerBound(L.agg.t, this.view.from)) : 0,
        markers: this.markerCount, trades: L ? this.tradesInRange : 0,
        visibleFrom: this.view ? this.view.from : null, visibleTo: this.view ? this.view.to : null,
        openTrade: this.selected ? this.selected.id : null, symbols: Array.from(this.series.keys()),
        timeframes: ["auto"].concat(this.timeframes.map(timeframeName))};
    }

    /** Candles of the current timeframe drawn (loaded) that open within [from, to] (seconds). */
    countCandles(from, to) {
      const L = this.loaded;
      if (!L) return 0;
      const first = Math.max(L.a, lowerBound(L.agg.t, from)), end = Math.min(L.b, upperBound(L.agg.t, to));
      return Math.max(0, end - first);
    }

    /** Where a trade's entry or exit marker is drawn, in page (client) pixels; null when not drawn. */
    markerPoint(id, kind) {
      const trade = this.tradesById.get(String(id));
      if (!trade || !this.loaded || trade.symbol !== this.symbol) return null;
      const time = kind === "entry" ? trade.entry : trade.exit, price = kind === "entry" ? trade.entry_price : trade.exit_price;
      if (time === null || time === undefined) return null;
      const x = this.chart.timeScale().timeToCoordinate(this.barOf(time)), y = this.candle.priceToCoordinate(price);
      if (x === null || y === null) return null;
      const box = this.chartBox.getBoundingClientRect();
      return {x: box.left + x, y: box.top + y};
    }

    api() {
      const after = fn => (...args) => this.ready.then(() => fn(...args));
      return {
        element: this.element, chart: this.chart, ready: this.ready.then(() => undefined),
        setSymbol: after(s => this.setSymbol(s)), setTimeframe: after(tf => this.setTimeframe(tf)),
        showTrade: after(id => this.showTrade(id)), setRange: after((from, to) => this.setRange(from, to)),
        fit: after(() => this.fit()), update: payload => (this.ready = this.ready.then(() =>
          this.load(payload, true)).then(() => this)),
        state: () => this.state(), countCandles: (from, to) => this.countCandles(from, to),
        markerPoint: (id, kind) => this.markerPoint(id, kind || "exit"), closeTrade: () => this.closeTrade(),
      };
    }
  }

  // ---- the equity chart -----------------------------------------------------------------------------------
  /** Points for the library: seconds, strictly increasing (the last value of a second kept). */
  function equityPoints(data) {
    const points = [], times = data.t || [], values = data.v || [];
    for (let i = 0; i < times.length; i++) {
      const time = Math.floor(times[i] / 1000), value = values[i];
      if (value === null || value === undefined) continue;
      if (points.length && points[points.length - 1].time >= time) points[points.length - 1].value = value;
      else points.push({time, value});
    }
    return points;
  }

  /** An equity line with its y-axis labelled in the currency and a time axis. `update(data)` draws new points,
   * showing them all until the reader zooms or pans. */
  function equity(element, data, options) {
    options = options || {};
    themeOf(element, options.theme || data.theme || "dark");
    element.classList.add("gtc", "gtc-equity");
    element.replaceChildren();
    const bar = el("div", "gtc-toolbar"), colors = palette(element);
    const title = el("span", "gtc-title"), axis = el("span", "gtc-axis-label");
    bar.append(title, axis);
    const box = el("div", "gtc-chart");
    box.style.height = `${options.height || 260}px`;
    element.append(bar, box);
    const chart = LW.createChart(box, chartOptions(colors));
    const priceFormat = {type: "custom", minMove: 0.01, formatter: p => formatNumber(p, 2)};
    // data.lines [{name, t, v}]: one named line each (profiles side by side); else one area, the equity
    const lineColors = [colors.blue, colors.amber, colors.green, colors.red, colors.text, colors.muted];
    const series = data.lines ? null : chart.addSeries(LW.AreaSeries, {lineColor: colors.blue,
      topColor: colors.blue + "55", bottomColor: colors.blue + "08", lineWidth: 2, priceFormat});
    const lines = (data.lines || []).map((line, i) => chart.addSeries(LW.LineSeries,
      {color: lineColors[i % lineColors.length], lineWidth: 2, title: line.name, priceFormat}));
    let points = [], follow = true;
    const draw = next => {
      title.textContent = next.title || "Equity";
      axis.textContent = next.currency || "";
      if (series) {
        series.applyOptions({title: next.currency || ""});
        points = equityPoints(next);
        series.setData(points);
      } else {
        const each = (next.lines || []).map(equityPoints);
        each.forEach((linePoints, i) => { if (lines[i]) lines[i].setData(linePoints); });
        points = [].concat(...each);
      }
      if (follow) chart.timeScale().fitContent();
    };
    for (const name of ["wheel", "pointerdown"]) box.addEventListener(name, () => { follow = false; }, {passive: true});
    draw(data);
    new ResizeObserver(() => { if (follow) chart.timeScale().fitContent(); }).observe(box);
    followScheme(element, chart);
    return {element, chart, ready: Promise.resolve(), update: next => Promise.resolve(draw({...data, ...next})),
      fit: () => { follow = true; chart.timeScale().fitContent(); },
      state: () => ({points: points.length, currency: axis.textContent})};
  }

  // ---- mounting -------------------------------------------------------------------------------------------
  const mounted = window.gobotCharts = window.gobotCharts || {};
  let waiting = 0;

  function mount(element, payload, options) {
    return new TradeChart(element, payload, options).api();
  }

  /** Mount the chart or equity line embedded as `id` (its payload in the script `id`-data); window.gobotReady
   * becomes true once every embedded chart of the page is drawn. */
  function autoMount(id, kind, options) {
    const element = document.getElementById(id), source = document.getElementById(`${id}-data`);
    if (!element || !source) return null;
    const payload = JSON.parse(source.textContent);
    const controller = kind === "equity" ? equity(element, payload, options) : mount(element, payload, options);
    mounted[id] = controller;
    waiting++;
    window.gobotReady = false;
    controller.ready.then(() => requestAnimationFrame(() => {
      element.dataset.ready = "true";
      if (--waiting === 0) {
        window.gobotReadyAt = performance.now();
        window.gobotReady = true;
        document.dispatchEvent(new Event("gobot-ready"));
      }
    }), error => { element.dataset.error = String(error); console.error(error); });
    return controller;
  }

  /** The columns of a payload series, decoded (times in seconds): for tools and tests. */
  async function decode(series) {
    const d = await decodeSeries(series);
    return {t: Array.from(d.t), o: Array.from(d.o), h: Array.from(d.h), l: Array.from(d.l), c: Array.from(d.c),
      v: Array.from(d.v)};
  }

  window.GobotTradeChart = {mount, equity, autoMount, decode, charts: mounted, version: "1",
    indicators: {sma, ema, rsi, bollinger}, library: LW ? LW.version() : null};
})();
