// The fleet grid, the offenders table and the alerts tables: plain DOM built from REST v1 answers.

import type { Alert, OffenderView, ScopeSummary } from "./api";
import { sparkline } from "./charts";
import { ago, clock, count, el, metricValue, ms, pct, rps } from "./format";
import { helpFor } from "./help";

export type Drill = (pool: string | null, region: string | null, proxy?: string | null) => void;

const STATUS_TEXT: Record<string, string> = {
  ok: "ok",
  alerting: "alerting",
  stale: "stale",
  no_data: "no data",
};

function cellLabel(s: ScopeSummary): string {
  const m = s.metrics;
  const what = STATUS_TEXT[s.status] ?? s.status;
  const deviation = notableBaseline(s);
  if (m === null) return `${s.pool} / ${s.region}: ${what}`;
  return (
    `${s.pool} / ${s.region}: ${what}, success ${pct(m.success_rate)}, errors ${pct(m.error_rate)}, ` +
    `p95 ${ms(m.latency_ms.p95)}, ${rps(m.throughput_rps)}` +
    (s.active_alerts ? `, ${s.active_alerts} alert(s) firing` : "") +
    (deviation === null ? "" : `, ${baselineText(deviation)}`)
  );
}

/** The scope's most deviating judged baseline, when it is worth a look: a breach, or 3 standard
 * deviations or more (what the charts highlight). */
function notableBaseline(s: ScopeSummary): ScopeSummary["baselines"][number] | null {
  const judged = s.baselines.filter((b) => b.state === "judged" && b.sigma !== null);
  if (judged.length === 0) return null;
  const worst = judged.reduce((a, b) => (Math.abs(b.sigma ?? 0) > Math.abs(a.sigma ?? 0) ? b : a));
  return worst.breach || Math.abs(worst.sigma ?? 0) >= 3 ? worst : null;
}

function baselineText(b: ScopeSummary["baselines"][number]): string {
  const side = (b.value ?? 0) >= (b.baseline ?? 0) ? "above" : "below";
  return (
    `${b.metric} ${metricValue(b.metric, b.value)}, ${Math.abs(b.sigma ?? 0).toFixed(1)} standard ` +
    `deviations ${side} its baseline ${metricValue(b.metric, b.baseline)}` +
    (b.breach ? ` (a breach of rule ${b.rule_id})` : ` (rule ${b.rule_id})`)
  );
}

function baselineBadge(s: ScopeSummary): HTMLElement | null {
  const worst = notableBaseline(s);
  if (worst === null) return null;
  const sigma = worst.sigma ?? 0;
  const text = `${sigma >= 0 ? "+" : ""}${sigma.toFixed(1)}\u03c3 ${worst.metric}`;
  return el("span", { class: `badge baseline${worst.breach ? " breach" : ""}`, title: baselineText(worst) }, text);
}

function cell(s: ScopeSummary, selected: boolean, drill: Drill): HTMLElement {
  const m = s.metrics;
  const lines: (HTMLElement | null)[] = [];
  if (m === null) {
    lines.push(el("span", { class: "nodata" }, "no data"));
  } else {
    lines.push(
      el("span", { class: "m sr" }, `${pct(m.success_rate)} ok`),
      el("span", { class: "m er" }, `${pct(m.error_rate)} err`),
      el("span", { class: "m p95" }, `p95 ${ms(m.latency_ms.p95)}`),
      el("span", { class: "m rps" }, rps(m.throughput_rps)),
    );
  }
  if (s.status === "stale" && s.freshness.age_s !== null) {
    lines.push(el("span", { class: "m" }, `stale ${ago(s.freshness.age_s)}`));
  }
  if (s.active_alerts > 0) {
    lines.push(el("span", { class: "badge alert" }, `${s.active_alerts} alert${s.active_alerts > 1 ? "s" : ""}`));
  }
  lines.push(baselineBadge(s));
  const button = el(
    "button",
    {
      type: "button",
      class: `cell status-${s.status}${selected ? " selected" : ""}`,
      "aria-label": cellLabel(s),
      "aria-pressed": selected ? "true" : "false",
      "data-pool": s.pool,
      "data-region": s.region,
      "data-status": s.status,
    },
    ...lines,
  );
  button.addEventListener("click", () => drill(s.pool, s.region));
  return button;
}

export function renderGrid(
  host: HTMLElement,
  scopes: ScopeSummary[],
  selection: { pool: string | null; region: string | null },
  drill: Drill,
): void {
  const pools = [...new Set(scopes.map((s) => s.pool))].sort();
  const regions = [...new Set(scopes.map((s) => s.region))].sort();
  if (pools.length === 0) {
    host.replaceChildren(
      el("p", { class: "no-data", "data-testid": "grid-empty" }, "No data: no pool has reported in the last day."),
    );
    return;
  }
  const byKey = new Map(scopes.map((s) => [`${s.pool}\u0000${s.region}`, s]));
  const allButton = el("button", { type: "button", class: "axis", "aria-pressed": String(!selection.pool && !selection.region) }, "Whole fleet");
  allButton.addEventListener("click", () => drill(null, null));
  const head = el("tr", {}, el("th", { scope: "col" }, allButton));
  for (const region of regions) {
    const b = el("button", { type: "button", class: "axis", "data-region": region, "aria-pressed": String(selection.region === region && !selection.pool) }, region);
    b.addEventListener("click", () => drill(null, region));
    head.append(el("th", { scope: "col" }, b));
  }
  const body = el("tbody");
  for (const pool of pools) {
    const b = el("button", { type: "button", class: "axis", "data-pool": pool, "aria-pressed": String(selection.pool === pool && !selection.region) }, pool);
    b.addEventListener("click", () => drill(pool, null));
    const row = el("tr", {}, el("th", { scope: "row" }, b));
    for (const region of regions) {
      const s = byKey.get(`${pool}\u0000${region}`);
      const selected = selection.pool === pool && selection.region === region;
      row.append(el("td", {}, s === undefined ? el("span", { class: "absent" }, "\u2014") : cell(s, selected, drill)));
    }
    body.append(row);
  }
  const table = el(
    "table",
    { class: "grid", "data-testid": "fleet-grid" },
    el("caption", {}, "Latest closed window per pool (rows) and region (columns). Select a cell, a pool or a region to drill down."),
    el("thead", {}, head),
    body,
  );
  host.replaceChildren(table);
}

export function renderOffenders(
  host: HTMLElement,
  pool: string | null,
  offenders: OffenderView[] | null,
  selectedProxy: string | null,
  drill: Drill,
  pools: string[],
): void {
  if (pool === null) {
    const list = el("p", {}, "Choose a pool to list its top offending proxies: ");
    for (const p of pools) {
      const b = el("button", { type: "button", class: "linkish" }, p);
      b.addEventListener("click", () => drill(p, null));
      list.append(b, " ");
    }
    host.replaceChildren(list);
    return;
  }
  if (offenders === null || offenders.length === 0) {
    host.replaceChildren(el("p", { class: "no-data" }, `No data: no proxy of ${pool} had 10 requests or more in this range.`));
    return;
  }
  const body = el("tbody");
  for (const o of offenders) {
    const b = el("button", { type: "button", class: "linkish mono", "aria-pressed": String(o.proxy_id === selectedProxy), "data-proxy": o.proxy_id }, o.proxy_id);
    b.addEventListener("click", () => drill(o.pool, o.region, o.proxy_id));
    body.append(
      el(
        "tr",
        {},
        el("th", { scope: "row" }, b),
        el("td", {}, o.region),
        el("td", { class: "num" }, count(o.metrics.requests)),
        el("td", { class: "num" }, pct(o.metrics.error_rate)),
        el("td", { class: "num" }, ms(o.metrics.latency_ms.p95)),
        el("td", {}, sparkline(o.series, "rate", `error rate history of proxy ${o.proxy_id}`)),
      ),
    );
  }
  host.replaceChildren(
    el(
      "table",
      { class: "offenders", "data-testid": "offenders" },
      el(
        "thead",
        {},
        el(
          "tr",
          {},
          el("th", { scope: "col" }, "Proxy (HMAC id)"),
          el("th", { scope: "col" }, "Region"),
          el("th", { scope: "col" }, "Requests"),
          el("th", { scope: "col" }, "Error rate"),
          el("th", { scope: "col" }, "p95"),
          el("th", { scope: "col" }, "Error rate history"),
        ),
      ),
      body,
    ),
  );
}

/** The unit an alert's numbers are in, from its rule's name (REST v1 alerts carry no metric). */
function alertUnit(a: Alert): string {
  const name = `${a.rule_id} ${a.alertname}`.toLowerCase();
  if (/latency|_ms|slow|p50|p9/.test(name)) return "x_ms";
  if (/throughput|rps|traffic|surge/.test(name)) return "x_rps";
  const numbers = [a.value, a.threshold, a.baseline].filter((v): v is number => v !== null);
  if (/rate|error|success/.test(name) && numbers.every((v) => v >= 0 && v <= 1)) return "x_rate";
  return "value";
}

function against(a: Alert): string {
  const metric = alertUnit(a);
  const value = metricValue(metric, a.value);
  if (a.baseline !== null) return `${value} vs baseline ${metricValue(metric, a.baseline)}`;
  if (a.threshold !== null) return `${value} vs threshold ${metricValue(metric, a.threshold)}`;
  return value;
}

function alertRow(a: Alert, live: boolean): HTMLElement {
  const scope = a.proxy_id
    ? `proxy ${a.proxy_id} (${a.pool}/${a.region})`
    : [a.pool, a.region].filter(Boolean).join(" / ") || "fleet";
  const steps = a.annotations["next_steps"];
  const summary = a.annotations["summary"] ?? "";
  const about = el("td", {}, summary);
  if (steps && a.status === "firing") {
    about.append(el("details", {}, el("summary", {}, "Next steps"), el("pre", { class: "steps" }, steps)));
  }
  const when =
    a.status === "firing"
      ? `${live ? "since" : "fired"} ${clock(a.starts_at_ms)}`
      : `${clock(a.starts_at_ms)} \u2192 ${a.ends_at_ms === null ? "?" : clock(a.ends_at_ms)}`;
  return el(
    "tr",
    { class: `alert-${a.status}`, "data-alertname": a.alertname, "data-status": a.status },
    el("td", {}, el("span", { class: `badge ${a.status}` }, a.status)),
    el("th", { scope: "row" }, a.alertname),
    el("td", {}, el("span", { class: `sev sev-${a.severity}` }, a.severity)),
    el("td", {}, scope),
    el("td", { class: "num" }, against(a)),
    el("td", {}, when),
    about,
  );
}

function alertsTable(rows: Alert[], caption: string, testid: string, empty: string, live: boolean): HTMLElement {
  if (rows.length === 0) return el("p", { class: "quiet", "data-testid": testid }, empty);
  const head = el(
    "tr",
    {},
    ...["Status", "Alert", "Severity", "Scope", "Value", "When", "Summary"].map((h) => el("th", { scope: "col" }, h)),
  );
  return el(
    "table",
    { class: "alerts", "data-testid": testid },
    el("caption", {}, caption),
    el("thead", {}, head),
    el("tbody", {}, ...rows.map((a) => alertRow(a, live))),
  );
}

export function renderAlerts(host: HTMLElement, active: Alert[], history: Alert[]): void {
  host.replaceChildren(
    el("h3", {}, "Firing now ", helpFor("alerts")),
    alertsTable(active, "Alerts firing now in this scope", "alerts-active", "No alert is firing in this scope.", true),
    el("h3", {}, "Recent history"),
    alertsTable(history.slice(0, 50), "State changes in the selected range, newest first", "alerts-history", "No alert state change in this range.", false),
  );
}
