// gobot dashboard: long-polls /api/dashboard and redraws; the controls POST with the bearer token.
"use strict";

const PHASES = ["scan", "ideas", "adjust", "validate", "execute", "report"];
let version = -1;
let token = "";
let ageBase = null;  // [seconds at receipt, Date.now() at receipt]
let lastCycle = null;
let lastTrade = null;

const $ = (id) => document.getElementById(id);
let places = 2;  // status.currency_decimals: amounts shown as gobot_hookspecs.money shows them
const money = (x) => (x === null || x === undefined ? "–" : Number(x).toFixed(places));
const signed = (x) => (x === null || x === undefined ? "–" : (x >= 0 ? "+" : "") + Number(x).toFixed(places));
const num = (x) => (x === null || x === undefined ? "–" : Number(x).toPrecision(6).replace(/\.?0+$/, ""));
const when = (iso) => (iso ? iso.replace("T", " ").slice(0, 16) : "–");
const cls = (x) => (x > 0 ? "pos" : x < 0 ? "neg" : "");

function headers() {
  return token ? { Authorization: "Bearer " + token } : {};
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

/** Rows of a table; ``trade(row)`` gives a row's [symbol, id] to show on the chart when it is clicked. */
function fillTable(id, rows, columns, isNew, trade) {
  const body = $(id).querySelector("tbody");
  body.replaceChildren();
  if (!rows.length) {
    const tr = document.createElement("tr");
    const td = cell("none yet", "empty");
    td.colSpan = $(id).querySelectorAll("th").length;
    tr.appendChild(td);
    body.appendChild(tr);
    return;
  }
  for (const row of rows) {
    const tr = document.createElement("tr");
    if (isNew && isNew(row)) tr.className = "new";
    if (trade) {
      [tr.dataset.symbol, tr.dataset.tradeId] = trade(row);
      tr.classList.add("trade-link");
      tr.title = "show on the chart";
    }
    for (const [text, className] of columns(row)) tr.appendChild(cell(text, className));
    body.appendChild(tr);
  }
}

function badge(id, text, level) {
  const el = $(id);
  el.textContent = text;
  el.className = "badge " + level;
}

// ---- the charts: candles with the run's trades (/api/chart, gobot_hookspecs.tradechart), the equity curve ----
const CHART_REFRESH_MS = 1000;  // the candle chart is fetched again at most this often while cycles complete
const chartView = { controller: null, symbol: null, dirty: false, urgent: false, busy: false, pendingTrade: null, loads: 0 };
let equityChart = null;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The symbol selector: the run's symbols (configured and traded), the shown one kept. */
function chartSymbols(symbols) {
  const select = $("chart-symbol");
  if (!chartView.symbol && symbols.length) chartView.symbol = symbols[0];
  if (Array.from(select.options).map((o) => o.value).join("\n") !== symbols.join("\n")) {
    select.replaceChildren(...symbols.map((s) => new Option(s, s)));
  }
  select.value = chartView.symbol || "";
}

/** Fetch the shown symbol's chart and draw it; an update keeps the zoom (and follows the newest candle). */
async function loadChart() {
  const symbol = chartView.symbol;
  if (!symbol || !window.GobotTradeChart) return;
  const response = await fetch("/api/chart?symbol=" + encodeURIComponent(symbol), { headers: headers(), cache: "no-store" });
  let payload;
  try { payload = await response.json(); } catch (ignored) { payload = { error: "HTTP " + response.status }; }
  if (!response.ok) {
    $("chart-note").textContent = payload.error || "HTTP " + response.status;
    return;
  }
  $("chart-note").textContent = "";
  if (symbol !== chartView.symbol) return;  // another symbol was chosen meanwhile: its load follows
  if (chartView.controller) await chartView.controller.update(payload);
  else {
    chartView.controller = GobotTradeChart.mount($("chart"), payload, { height: 460, theme: "dark" });
    await chartView.controller.ready;
  }
  $("chart").dataset.symbol = symbol;
  $("chart").dataset.loads = String(++chartView.loads);  // charts drawn (tests wait for the next one)
  if (chartView.pendingTrade !== null) {
    const id = chartView.pendingTrade;
    chartView.pendingTrade = null;
    await openTrade(id);
  }
}

/** The chart moves to a trade and opens its story; a trade older than the chart's candles is said so. */
async function openTrade(id) {
  const found = await chartView.controller.showTrade(id);
  $("chart-note").textContent = found ? "" : "that trade is older than the chart's candles (the newest 1,000)";
}

/** Something changed: load the chart again, at most every CHART_REFRESH_MS (at once for a person's choice),
 * one request at a time. */
async function refreshChart(urgent) {
  chartView.dirty = true;
  chartView.urgent ||= Boolean(urgent);
  if (chartView.busy) return;
  chartView.busy = true;
  try {
    while (chartView.dirty) {
      chartView.dirty = false;
      const started = Date.now();
      try {
        await loadChart();
      } catch (error) {
        $("chart-note").textContent = "chart: " + error.message;
      }
      const rest = CHART_REFRESH_MS - (Date.now() - started);
      if (chartView.dirty && !chartView.urgent && rest > 0) await sleep(rest);
      chartView.urgent = false;
    }
  } finally {
    chartView.busy = false;
  }
}

/** The symbol selector's choice (or a clicked trade's symbol): its chart, at once. */
function chooseSymbol(symbol) {
  chartView.symbol = symbol;
  $("chart-symbol").value = symbol;
  refreshChart(true);
}

/** A trade clicked in the dashboard's tables: the chart moves to it and opens its drill-down. */
function showTrade(symbol, id) {
  $("chart").scrollIntoView({ block: "start", behavior: "smooth" });
  if (symbol === chartView.symbol && chartView.controller) {
    openTrade(id);
    return;
  }
  chartView.pendingTrade = id;  // shown once the symbol's chart is drawn
  chooseSymbol(symbol);
}

/** The equity curve: a y-axis in the portfolio currency and a time axis, drawn once and then given new points. */
function drawEquity(points, currency) {
  if (points.length < 2) {
    $("curve-range").textContent = "the curve appears after two cycles";
    return;
  }
  const values = points.map((p) => p[1]);
  $("curve-range").textContent = "low " + money(Math.min(...values)) + " · high " + money(Math.max(...values));
  if (!window.GobotTradeChart) return;
  const data = { t: points.map((p) => Date.parse(p[0])), v: values, currency, title: "Equity" };
  if (equityChart) equityChart.update(data);  // new points, the axes stay (and the reader's zoom, once zoomed)
  else equityChart = GobotTradeChart.equity($("equity-chart"), data, { height: 220, theme: "dark" });
}

function renderRisk(status) {
  const dl = $("risk");
  dl.replaceChildren();
  const add = (term, text) => {
    const dt = document.createElement("dt"); dt.textContent = term;
    const dd = document.createElement("dd"); dd.textContent = text;
    dl.append(dt, dd);
  };
  add("circuit breaker", status.breaker);
  for (const [name, st] of Object.entries(status.strategies || {})) {  // the validate phase's verdicts
    const counts = "proposals " + st.proposals.accepted + " accepted, " + st.proposals.rejected + " rejected";
    let verdict = "not judged yet";
    if (st.passed === true) verdict = "passed validation in cycle " + st.judged_in_cycle;
    if (st.passed === false) {
      const done = { keep: "kept", revert: "reverted from v" + st.failed_version, stop: "NO NEW POSITIONS" }[st.action] || st.action;
      verdict = "v" + st.failed_version + " FAILED validation in cycle " + st.judged_in_cycle + ": " + done + " (" + st.reasons.join("; ") + ")";
    }
    add("strategy " + name + " v" + st.version, verdict + " · " + counts);
  }
  add("rate-limit policy", status.rate_limiter.policy || "–");
  const used = status.rate_limiter.samples.filter((s) => s.name === "gobot_rate_limit_weight_used");
  const limits = status.rate_limiter.samples.filter((s) => s.name === "gobot_rate_limit_weight_limit");
  for (const s of used) {
    const budget = s.labels.budget || "weight";
    const limit = limits.find((l) => (l.labels.budget || "weight") === budget);
    add("weight used (" + budget + ")", num(s.value) + (limit ? " / " + num(limit.value) : ""));
  }
  const queued = status.rate_limiter.samples.filter((s) => s.name === "gobot_rate_limit_queue_depth");
  if (queued.length) add("queue by priority", queued.map((s) => (s.labels.priority || "?") + " " + num(s.value)).join(" · "));
  for (const [plugin, st] of Object.entries(status.plugin_status)) {
    if (st.error) { add(plugin, "status unknown: " + st.error); continue; }
    const parts = [st.state, st.reason].filter(Boolean);
    if (parts.length) add(plugin, parts.join(" — "));
  }
}

function render(doc) {
  const s = doc.status;
  const m = doc.metrics;
  $("run").textContent = "run " + s.run_id + " · " + s.mode + (s.simulated_clock ? " · simulated clock" : "");
  const state = s.kill_switch ? ["KILLED", "bad"] : s.paused ? ["PAUSED", "warn"] : s.running ? ["RUNNING", "ok"]
    : s.finished ? ["FINISHED", "ok"] : ["STOPPED", "warn"];
  badge("state-badge", state[0], state[1]);
  badge("health-badge", s.health.healthy ? "healthy" : "unhealthy", s.health.healthy ? "ok" : "bad");
  $("health-badge").title = s.health.problems.join("\n");
  const tripped = ["OPEN", "HARD_STOP", "TRIPPED"].includes(String(s.breaker).toUpperCase());
  badge("breaker-badge", "breaker " + s.breaker, tripped ? "bad" : s.breaker === "not installed" ? "" : "ok");
  places = s.currency_decimals;
  for (const el of document.querySelectorAll(".ccy")) el.textContent = s.currency ? "(" + s.currency + ")" : "";
  $("equity").textContent = money(s.equity);
  $("pnl").textContent = signed(s.pnl);
  $("pnl").className = "value " + cls(s.pnl);
  $("iteration").textContent = String(s.iteration);
  $("clock").textContent = when(s.clock);
  $("closed").textContent = String(s.closed_trades);
  ageBase = [s.health.last_cycle_age_seconds, Date.now()];
  tickAge();
  drawEquity(m.equity_curve, s.currency);
  chartSymbols(s.symbols);
  refreshChart();

  fillTable("positions", s.open_positions, (p) => [
    [p.symbol], [p.direction, "text"], [num(p.amount)], [num(p.entry_price)], [num(p.price)],
    [signed(p.unrealised_pnl), cls(p.unrealised_pnl)], [num(p.stop_loss)], [num(p.take_profit)], [p.strategy || "–", "text"],
  ], null, (p) => [p.symbol, p.id]);
  const newestTrade = doc.trades.trades.length ? doc.trades.trades[0].closed_at + doc.trades.trades[0].symbol : null;
  fillTable("trades", doc.trades.trades, (t) => [
    [when(t.closed_at)], [t.symbol, "text"], [t.direction, "text"], [num(t.entry_price)], [num(t.exit_price)],
    [signed(t.pnl), cls(t.pnl)], [t.exit_reason, "text"], [t.strategy ? t.strategy + (t.strategy_version ? " v" + t.strategy_version : "") : "–", "text"],
  ], (t) => lastTrade !== null && t.closed_at + t.symbol === newestTrade && newestTrade !== lastTrade, (t) => [t.symbol, t.id]);
  lastTrade = newestTrade;
  const newest = doc.cycles.cycles.length ? doc.cycles.cycles[0].iteration : null;
  fillTable("cycles", doc.cycles.cycles, (c) => [
    [String(c.iteration)], [when(c.time), "text"], [c.signals, "text"], [String(c.vetoes)], [String(c.orders)], [String(c.fills)],
    [money(c.equity)], ...PHASES.map((p) => [c.phase_ms[p] === undefined ? "–" : Number(c.phase_ms[p]).toFixed(1)]),
    [Number(c.duration_ms).toFixed(1)], [c.note, "text"],
  ], (c) => lastCycle !== null && c.iteration === newest && newest !== lastCycle);
  lastCycle = newest;

  renderRisk(s);
  const list = $("plugins");
  list.replaceChildren();
  for (const p of s.plugins) {
    const li = document.createElement("li");
    li.className = p.status;
    li.textContent = p.name + (p.status === "enabled" ? "" : " (" + p.status + ")");
    li.title = [p.distribution + " " + p.version, p.reason, p.hooks.join(", ")].filter(Boolean).join("\n");
    list.appendChild(li);
  }
  for (const id of ["pause", "unpause", "kill"]) {
    $(id).disabled = !s.controls || s.kill_switch;
    $(id).title = s.controls ? "" : "controls are off: start the bot with GOBOT_DASHBOARD_TOKEN set";
  }
  $("pause").disabled ||= s.paused;
  $("unpause").disabled ||= !s.paused;
}

function tickAge() {
  if (!ageBase) return;
  const seconds = ageBase[0] + (Date.now() - ageBase[1]) / 1000;
  $("age").textContent = seconds < 90 ? seconds.toFixed(0) + " s ago" : (seconds / 60).toFixed(1) + " min ago";
}

async function poll() {
  for (;;) {
    try {
      const response = await fetch("/api/dashboard?after=" + version + "&wait=20", { headers: headers(), cache: "no-store" });
      if (!response.ok) {
        let reason = "HTTP " + response.status;
        try { reason += ": " + (await response.json()).error; } catch (ignored) { /* not JSON */ }
        throw new Error(reason);
      }
      const doc = await response.json();
      version = doc.version;
      render(doc);
    } catch (error) {
      badge("state-badge", "DISCONNECTED", "bad");
      $("run").textContent = "cannot reach the bot (" + error.message + "); retrying";
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }
}

async function control(action) {
  if (action === "kill" && !window.confirm("Engage the kill switch? No new orders are sent and the run ends.")) return;
  const msg = $("control-msg");
  msg.textContent = action + "…";
  try {
    const response = await fetch("/api/" + action, { method: "POST", headers: headers() });
    const body = await response.json();
    msg.textContent = response.ok ? action + ": done" : action + " refused: " + body.error;
  } catch (error) {
    msg.textContent = action + " failed: " + error.message;
  }
}

function setToken(value) {
  token = value.trim();
  if (token) sessionStorage.setItem("gobot-token", token);
  else sessionStorage.removeItem("gobot-token");
}

document.addEventListener("DOMContentLoaded", () => {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromHash) history.replaceState(null, "", location.pathname);  // the token leaves the address bar
  setToken(fromHash || sessionStorage.getItem("gobot-token") || "");
  $("token").value = token;
  $("token").addEventListener("change", (e) => setToken(e.target.value));
  for (const id of ["pause", "unpause", "kill"]) $(id).addEventListener("click", () => control(id));
  $("chart-symbol").addEventListener("change", (e) => chooseSymbol(e.target.value));
  for (const id of ["positions", "trades"]) {
    $(id).addEventListener("click", (e) => {
      const row = e.target.closest("tr[data-trade-id]");
      if (row) showTrade(row.dataset.symbol, row.dataset.tradeId);
    });
  }
  setInterval(tickAge, 1000);
  poll();
});
