// The dashboard: fleet grid, charts of the selected scope, top offending proxies and alerts, all
// from REST v1 (docs/api.md). The view lives in the URL; refreshes do not reload the page.

import {
  ApiError,
  type AlertsView,
  apiUrl,
  getJson,
  type OffendersView,
  type PoolsView,
  type ScopeSummary,
  storedToken,
  storeToken,
  type SummaryView,
} from "./api";
import { Chart } from "./charts";
import { ago, clock, el } from "./format";
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
import { type ChartKey, incidents, outcomesFor, scopeCharts } from "./scope";
import { type Drill, renderAlerts, renderGrid, renderOffenders } from "./views";

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

const charts: Record<ChartKey, Chart> = {
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
      scopeCharts(snapshot, scope, outcomesFor(inScope), summary.settled_end_ms),
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
    for (const [key, chart] of Object.entries(charts) as [ChartKey, Chart][]) {
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
