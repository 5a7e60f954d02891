// The dashboard: fleet grid, charts of the selected scope, top offending proxies and alerts, all
// from REST v1 (docs/api.md). The view lives in the URL; refreshes do not reload the page.

import {
  type Alert,
  ApiError,
  type AlertsView,
  apiUrl,
  getJson,
  type OffendersView,
  type Point,
  type PoolsView,
  type ScopeSummary,
  type SeriesView,
  storedToken,
  storeToken,
  type SummaryView,
} from "./api";
import { type Baseline, Chart, type ChartSpec, type Line } from "./charts";
import { ago, clock, el, metricValue } from "./format";
import { helpFor } from "./help";
import {
  formatState,
  parseState,
  RANGES,
  rangeParams,
  REFRESH_CHOICES_S,
  scopeName,
  scopeParams,
  type ViewState,
} from "./state";
import { type Drill, renderAlerts, renderGrid, renderOffenders } from "./views";

const DEFAULT_OUTCOMES = ["timeout", "http_error", "connection_error", "proxy_error"];
const MAX_OUTCOMES = 6;
const OUTCOME_COLORS = ["#b3261e", "#6a1b9a", "#0d47a1", "#e65100", "#00695c", "#4e342e"];

function byId<T extends HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (node === null) throw new Error(`#${id} missing from index.html`);
  return node as T;
}

const ui = {
  range: byId<HTMLSelectElement>("range"),
  custom: byId<HTMLFieldSetElement>("custom-range"),
  start: byId<HTMLInputElement>("start"),
  end: byId<HTMLInputElement>("end"),
  apply: byId<HTMLButtonElement>("apply-custom"),
  pool: byId<HTMLSelectElement>("pool"),
  region: byId<HTMLSelectElement>("region"),
  proxy: byId<HTMLSelectElement>("proxy"),
  refresh: byId<HTMLSelectElement>("refresh"),
  pause: byId<HTMLButtonElement>("pause"),
  updated: byId<HTMLElement>("updated"),
  stale: byId<HTMLElement>("stale-banner"),
  error: byId<HTMLElement>("error-banner"),
  tokenForm: byId<HTMLFormElement>("token-form"),
  tokenInput: byId<HTMLInputElement>("token"),
  tokenMessage: byId<HTMLElement>("token-message"),
  grid: byId<HTMLElement>("grid"),
  scope: byId<HTMLElement>("scope-title"),
  charts: byId<HTMLElement>("charts"),
  offenders: byId<HTMLElement>("offenders"),
  alerts: byId<HTMLElement>("alerts"),
  exportLink: byId<HTMLAnchorElement>("export-csv"),
};

let state: ViewState = parseState(location.search);
let paused = false;
let timer: number | undefined;
let generation = 0;
let knownPools: PoolsView["pools"] = [];

const charts = {
  rates: new Chart("chart-rates", "Success and error rate", helpFor("success_rate")),
  latency: new Chart("chart-latency", "Latency p50 / p95 / p99", helpFor("latency")),
  throughput: new Chart("chart-throughput", "Throughput", helpFor("throughput_rps")),
  outcomes: new Chart("chart-outcomes", "Errors by outcome", helpFor("outcomes")),
};
ui.charts.append(...Object.values(charts).map((c) => c.root));

// ---- controls <-> state ----------------------------------------------------------------

function localInput(epochS: number): string {
  const d = new Date(epochS * 1000 - new Date().getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 16);
}

function setOptions(select: HTMLSelectElement, values: string[], allLabel: string, chosen: string | null): void {
  const options = [el("option", { value: "" }, allLabel), ...values.map((v) => el("option", { value: v }, v))];
  if (chosen !== null && !values.includes(chosen)) options.push(el("option", { value: chosen }, chosen));
  select.replaceChildren(...options);
  select.value = chosen ?? "";
}

function showControls(): void {
  ui.range.value = state.range;
  ui.custom.hidden = state.range !== "custom";
  if (state.range === "custom" && state.startS !== null && state.endS !== null) {
    ui.start.value = localInput(state.startS);
    ui.end.value = localInput(state.endS);
  }
  const pools = knownPools.map((p) => p.pool);
  const regions = [...new Set(knownPools.flatMap((p) => (state.pool && p.pool !== state.pool ? [] : p.regions)))].sort();
  setOptions(ui.pool, pools, "All pools", state.pool);
  setOptions(ui.region, regions, "All regions", state.region);
  ui.proxy.disabled = state.pool === null;
  if (state.pool === null) setOptions(ui.proxy, [], "All proxies (choose a pool)", null);
  ui.refresh.value = String(state.refreshS);
  ui.pause.setAttribute("aria-pressed", String(paused));
  ui.pause.textContent = paused ? "Resume auto-refresh" : "Pause auto-refresh";
  // GET /api/v1/export (api/routes/export.py): the same range and scope; per proxy in a proxy view
  const exportParams = {
    ...rangeParams(state),
    ...scopeParams(state),
    ...(state.proxy ? { proxies: "true" } : {}),
    format: "csv",
  };
  ui.exportLink.href = apiUrl("export", exportParams);
}

/** A new view: pushed to the history (back restores it) and loaded without a page reload. */
function navigate(next: ViewState, replace = false): void {
  state = next;
  const url = formatState(state);
  if (replace) history.replaceState(null, "", url);
  else if (url !== location.search) history.pushState(null, "", url);
  showControls();
  void refresh();
}

const drill: Drill = (pool, region, proxy = null) => {
  navigate({ ...state, pool, region, proxy: pool === null ? null : proxy });
};

ui.range.addEventListener("change", () => {
  if (ui.range.value === "custom") {
    ui.custom.hidden = false;
    const nowS = Math.floor(Date.now() / 1000);
    ui.start.value = localInput(nowS - 3_600);
    ui.end.value = localInput(nowS);
    ui.start.focus();
    return;
  }
  navigate({ ...state, range: ui.range.value, startS: null, endS: null });
});
ui.apply.addEventListener("click", () => {
  const startS = Math.floor(new Date(ui.start.value).getTime() / 1000);
  const endS = Math.floor(new Date(ui.end.value).getTime() / 1000);
  if (!Number.isFinite(startS) || !Number.isFinite(endS) || startS >= endS) {
    ui.end.setCustomValidity("The end must be after the start");
    ui.end.reportValidity();
    return;
  }
  ui.end.setCustomValidity("");
  navigate({ ...state, range: "custom", startS, endS });
});
ui.pool.addEventListener("change", () => drill(ui.pool.value || null, state.region));
ui.region.addEventListener("change", () => drill(state.pool, ui.region.value || null));
ui.proxy.addEventListener("change", () => drill(state.pool, state.region, ui.proxy.value || null));
ui.refresh.addEventListener("change", () => navigate({ ...state, refreshS: Number(ui.refresh.value) }, true));
ui.pause.addEventListener("click", () => {
  paused = !paused;
  showControls();
  if (paused) window.clearTimeout(timer);
  else void refresh(); // resuming shows the present at once
});
document.querySelector("form.controls")?.addEventListener("submit", (event) => event.preventDefault());
window.addEventListener("popstate", () => {
  state = parseState(location.search);
  showControls();
  void refresh();
});
ui.tokenForm.addEventListener("submit", (event) => {
  event.preventDefault();
  storeToken(ui.tokenInput.value.trim() || null);
  ui.tokenInput.value = "";
  ui.tokenForm.hidden = true;
  void refresh();
});
ui.exportLink.addEventListener("click", (event) => {
  const token = storedToken();
  if (!token) return; // a plain link: reads are open
  event.preventDefault();
  void (async () => {
    const response = await fetch(ui.exportLink.href, { headers: { Authorization: `Bearer ${token}` } });
    if (!response.ok) {
      showError(`Export failed: ${response.status} ${response.statusText}`);
      return;
    }
    const link = el("a", { href: URL.createObjectURL(await response.blob()), download: "proxywhirl-metrics.csv" });
    link.click();
    URL.revokeObjectURL(link.href);
  })();
});
let resizeTimer: number | undefined;
window.addEventListener("resize", () => {
  window.clearTimeout(resizeTimer);
  resizeTimer = window.setTimeout(() => Object.values(charts).forEach((c) => c.resize()), 150);
});

function schedule(): void {
  window.clearTimeout(timer);
  if (!paused) timer = window.setTimeout(() => void refresh(), state.refreshS * 1000);
}

// ---- banners ------------------------------------------------------------------------------

function showError(message: string | null): void {
  ui.error.hidden = message === null;
  ui.error.textContent = message ?? "";
}

function explain(exc: unknown): void {
  if (!(exc instanceof ApiError)) {
    showError(`The page failed: ${String(exc)}`);
    return;
  }
  if (exc.kind === "token_needed") {
    showError(null);
    ui.tokenForm.hidden = false;
    ui.tokenMessage.textContent = storedToken()
      ? "The API refused the token (invalid). Enter a token with the read role."
      : "This API needs a token to read (it is not bound to a loopback address). Enter a token with the read role.";
    storeToken(null);
    ui.tokenInput.focus();
    return;
  }
  if (exc.kind === "forbidden") {
    showError(`The token lacks the read role: ${exc.message}`);
    return;
  }
  if (exc.kind === "unreachable") {
    showError(`Cannot reach the API (${exc.message}). Retrying every ${state.refreshS} s; the data below is from the last successful refresh.`);
    return;
  }
  showError(`The API answered with an error: ${exc.message}`);
}

function windowSOf(scopes: ScopeSummary[]): number {
  for (const s of scopes) {
    if (s.window_start_ms !== null && s.window_end_ms !== null) return (s.window_end_ms - s.window_start_ms) / 1000;
  }
  return 10;
}

function showFreshness(summary: SummaryView, inScope: ScopeSummary[]): void {
  const newest = Math.max(...inScope.map((s) => s.freshness.newest_data_end_ms ?? -Infinity));
  if (!Number.isFinite(newest)) {
    ui.stale.hidden = true;
    return;
  }
  const windowS = windowSOf(summary.scopes);
  const ageS = Math.max(0, (summary.generated_at_ms - newest) / 1000);
  const stale = ageS > 2 * windowS;
  ui.stale.hidden = !stale;
  ui.stale.replaceChildren(
    el("strong", {}, "Stale data. "),
    `The newest data of ${scopeName(state)} ended ${ago(ageS)} ago (${clock(newest)}), more than two ${windowS} s windows: ` +
      "the fleet stopped reporting or the pipeline is behind. Charts show what was stored. ",
    helpFor("freshness"),
  );
}

// ---- data -----------------------------------------------------------------------------------

function seriesOf(metric: string, extra: Record<string, string> = {}): Promise<SeriesView> {
  return getJson<SeriesView>("series", { metric, ...scopeParams(state), ...rangeParams(state), ...extra });
}

function lineOf(view: SeriesView, label: string, color: string, width = 1.5): Line {
  return { label, metric: view.metric, points: view.points, color, width };
}

interface ScopeData {
  specs: Partial<Record<keyof typeof charts, ChartSpec>>;
  startMs: number;
  endMs: number;
  caption: string;
}

function incidents(history: Alert[]): Alert[] {
  // one entry per incident: the resolved change when there is one, otherwise the firing one
  const byIncident = new Map<string, Alert>();
  for (const a of history) {
    const key = `${a.fingerprint}@${a.starts_at_ms}`;
    const seen = byIncident.get(key);
    if (seen === undefined || (seen.ends_at_ms === null && a.ends_at_ms !== null)) byIncident.set(key, a);
  }
  return [...byIncident.values()];
}

function baselineFor(metric: string, scope: ScopeSummary | undefined): Baseline | null {
  const b = scope?.baselines.find((d) => d.metric === metric && d.baseline !== null);
  if (b === undefined || b.baseline === null) return null;
  const std = b.sigma && b.value !== null ? Math.abs((b.value - b.baseline) / b.sigma) : null;
  return {
    metric,
    value: b.baseline,
    spread: std,
    label: `baseline ${metricValue(metric, b.baseline)} (rule ${b.rule_id}, latest window ${b.sigma === null ? "not judged" : `${b.sigma.toFixed(1)}\u03c3`})`,
  };
}

async function scopeCharts(
  scope: ScopeSummary | undefined,
  outcomes: string[],
  settledEndMs: number,
): Promise<ScopeData> {
  const alerts: Alert[] = []; // the range's alerts are added when they arrive (refresh)
  if (state.proxy !== null && state.pool !== null) {
    const common = { pool: state.pool, region: state.region, ...rangeParams(state), limit: 50, min_requests: 1 };
    const [byErrors, byLatency] = await Promise.all([
      getJson<OffendersView>("proxies", { ...common, by: "error_rate" }),
      getJson<OffendersView>("proxies", { ...common, by: "latency_p95_ms" }),
    ]);
    const errors = byErrors.proxies.find((p) => p.proxy_id === state.proxy);
    const latency = byLatency.proxies.find((p) => p.proxy_id === state.proxy);
    const base = { alerts, baseline: null, startMs: byErrors.start_ms, endMs: byErrors.end_ms };
    return {
      specs: {
        rates: { ...base, id: "rates", title: "", unit: "rate", lines: [{ label: "error rate", metric: "error_rate", points: errors?.series ?? [], color: "#b3261e" }] },
        latency: { ...base, id: "latency", title: "", unit: "ms", lines: [{ label: "p95", metric: "latency_p95_ms", points: latency?.series ?? [], color: "#0d47a1" }] },
      },
      startMs: byErrors.start_ms,
      endMs: byErrors.end_ms,
      caption: `Per-proxy history (${byErrors.step_s} s steps from proxy_1m): error rate and p95 latency only.`,
    };
  }
  const [success, errorRate, p50, p95, p99, throughput, ...byOutcome] = await Promise.all([
    seriesOf("success_rate"),
    seriesOf("error_rate"),
    seriesOf("latency_p50_ms"),
    seriesOf("latency_p95_ms"),
    seriesOf("latency_p99_ms"),
    seriesOf("throughput_rps"),
    ...outcomes.map((o) => seriesOf("outcome_rate", { outcome: o })),
  ]);
  if (success === undefined || errorRate === undefined || p50 === undefined || p95 === undefined || p99 === undefined || throughput === undefined) {
    throw new Error("series missing");
  }
  const base = { alerts, startMs: success.start_ms, endMs: success.end_ms };
  const latencyBaseline =
    baselineFor("latency_p95_ms", scope) ?? baselineFor("latency_p50_ms", scope) ?? baselineFor("latency_p99_ms", scope);
  const latencyIndex = latencyBaseline === null ? 1 : ["latency_p50_ms", "latency_p95_ms", "latency_p99_ms"].indexOf(latencyBaseline.metric);
  const rateBaseline = baselineFor("error_rate", scope) ?? baselineFor("success_rate", scope);
  return {
    specs: {
      rates: {
        ...base, id: "rates", title: "", unit: "rate",
        lines: [lineOf(success, "success rate", "#1b6e20"), lineOf(errorRate, "error rate", "#b3261e")],
        baseline: rateBaseline === null ? null : { ...rateBaseline, line: rateBaseline.metric === "success_rate" ? 0 : 1 },
      },
      latency: {
        ...base, id: "latency", title: "", unit: "ms",
        lines: [lineOf(p50, "p50", "#4a6fa5"), lineOf(p95, "p95", "#0d47a1", 2), lineOf(p99, "p99", "#6a1b9a")],
        baseline: latencyBaseline === null ? null : { ...latencyBaseline, line: latencyIndex },
      },
      throughput: {
        ...base, id: "throughput", title: "", unit: "rps",
        lines: [{ ...lineOf(throughput, "requests/s", "#00695c"), points: settledOnly(throughput, settledEndMs) }],
        baseline: (() => { const b = baselineFor("throughput_rps", scope); return b === null ? null : { ...b, line: 0 }; })(),
      },
      outcomes: {
        ...base, id: "outcomes", title: "", unit: "rate", baseline: null,
        lines: byOutcome.map((v, i) => lineOf(v, outcomes[i] ?? "?", OUTCOME_COLORS[i % OUTCOME_COLORS.length] ?? "#000")),
      },
    },
    startMs: success.start_ms,
    endMs: success.end_ms,
    caption: `Steps of ${success.step_s} s from the ${success.tier} rollup; empty steps are gaps, not zeros; throughput leaves out the step still filling.`,
  };
}

/** The points of steps whose windows have all closed: a step still filling would show too few
 * requests per second (a dip that is not there). */
function settledOnly(view: SeriesView, settledEndMs: number): Point[] {
  return view.points.map(([t, v]) => [t, t + view.step_s * 1000 > settledEndMs ? null : v]);
}

function outcomesFor(scopes: ScopeSummary[]): string[] {
  const seen = new Map<string, number>();
  for (const s of scopes) {
    for (const [outcome, rate] of Object.entries(s.metrics?.error_rate_by_outcome ?? {})) {
      if (rate) seen.set(outcome, (seen.get(outcome) ?? 0) + rate);
    }
  }
  const ranked = [...seen.entries()].sort((a, b) => b[1] - a[1]).map(([o]) => o);
  return [...new Set([...ranked, ...DEFAULT_OUTCOMES])].slice(0, MAX_OUTCOMES);
}

/** ``promise``, marked as handled: a read that fails while an earlier one already failed is not
 * an "uncaught" console error (the first failure is the one explained). */
function quiet<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}

async function refresh(): Promise<void> {
  const mine = ++generation;
  window.clearTimeout(timer);
  const snapshot = state;
  try {
    // every read starts at once; the grid is drawn as soon as the summary is in
    const summaryP = quiet(getJson<SummaryView>("summary"));
    const poolsP = quiet(getJson<PoolsView>("pools"));
    const activeP = quiet(getJson<AlertsView>("alerts", scopeParams(snapshot)));
    const historyP = quiet(
      getJson<AlertsView>("alerts/history", { ...scopeParams(snapshot), ...rangeParams(snapshot), limit: 500 }),
    );
    const offendersP = quiet(
      snapshot.pool === null
        ? Promise.resolve(null)
        : getJson<OffendersView>("proxies", { ...scopeParams(snapshot), ...rangeParams(snapshot), limit: 10 }),
    );
    const [summary, pools] = await Promise.all([summaryP, poolsP]);
    if (mine !== generation) return;
    knownPools = pools.pools;
    const inScope = summary.scopes.filter(
      (s) => (snapshot.pool === null || s.pool === snapshot.pool) && (snapshot.region === null || s.region === snapshot.region),
    );
    const scope = snapshot.pool !== null && snapshot.region !== null ? inScope[0] : undefined;
    showError(null);
    ui.tokenForm.hidden = true;
    showControls();
    renderGrid(ui.grid, summary.scopes, snapshot, drill);
    showFreshness(summary, inScope);
    ui.scope.textContent = scopeName(snapshot);

    const [data, active, history, offenders] = await Promise.all([
      scopeCharts(scope, outcomesFor(inScope), summary.settled_end_ms),
      activeP,
      historyP,
      offendersP,
    ]);
    if (mine !== generation) return;
    if (offenders !== null && snapshot.pool !== null) {
      const ids = offenders.proxies.map((p) => p.proxy_id);
      setOptions(ui.proxy, ids, "All proxies", snapshot.proxy);
    }
    const alerts = incidents(history.alerts).filter(
      (a) => snapshot.proxy === null || !a.proxy_id || a.proxy_id === snapshot.proxy,
    );
    const name = scopeName(snapshot);
    for (const [key, chart] of Object.entries(charts) as [keyof typeof charts, Chart][]) {
      const spec = data.specs[key];
      chart.root.hidden = spec === undefined;
      if (spec !== undefined) chart.render({ ...spec, alerts }, name, data.caption);
    }
    renderOffenders(ui.offenders, snapshot.pool, offenders?.proxies ?? null, snapshot.proxy, drill, knownPools.map((p) => p.pool));
    renderAlerts(ui.alerts, active.alerts, history.alerts);
    ui.updated.textContent = `Updated ${clock(summary.generated_at_ms)}`;
    document.body.dataset["loaded"] = String(mine);
  } catch (exc) {
    if (mine !== generation) return;
    explain(exc);
    if (exc instanceof ApiError && exc.kind === "token_needed") return; // wait for the token
  }
  if (mine === generation) schedule();
}

// ---- start ----------------------------------------------------------------------------------

ui.range.replaceChildren(
  ...RANGES.map((r) => el("option", { value: r }, `Last ${r}`)),
  el("option", { value: "custom" }, "Custom\u2026"),
);
ui.refresh.replaceChildren(...REFRESH_CHOICES_S.map((s) => el("option", { value: String(s) }, `every ${s} s`)));
history.replaceState(null, "", formatState(state));
showControls();
void refresh();
