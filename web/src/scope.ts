// What the charts of the selected scope show: REST v1 series (or a proxy's history from the
// offenders route), the learnt baselines of the scope, and the range's alerts as incidents.

import { type Alert, getJson, type OffendersView, type Point, type ScopeSummary, type SeriesView } from "./api";
import type { Baseline, ChartSpec, Line } from "./charts";
import { metricValue } from "./format";
import { rangeParams, scopeParams, type ViewState } from "./state";

export type ChartKey = "rates" | "latency" | "throughput" | "outcomes";

const DEFAULT_OUTCOMES = ["timeout", "http_error", "connection_error", "proxy_error"];
const MAX_OUTCOMES = 6;
const OUTCOME_COLORS = ["#b3261e", "#6a1b9a", "#0d47a1", "#e65100", "#00695c", "#4e342e"];

function seriesOf(state: ViewState, metric: string, extra: Record<string, string> = {}): Promise<SeriesView> {
  return getJson<SeriesView>("series", { metric, ...scopeParams(state), ...rangeParams(state), ...extra });
}

function lineOf(view: SeriesView, label: string, color: string, width = 1.5): Line {
  return { label, metric: view.metric, points: view.points, color, width };
}

export interface ScopeData {
  specs: Partial<Record<ChartKey, ChartSpec>>;
  startMs: number;
  endMs: number;
  caption: string;
}

export function incidents(history: Alert[]): Alert[] {
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

export async function scopeCharts(
  state: ViewState,
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
    seriesOf(state, "success_rate"),
    seriesOf(state, "error_rate"),
    seriesOf(state, "latency_p50_ms"),
    seriesOf(state, "latency_p95_ms"),
    seriesOf(state, "latency_p99_ms"),
    seriesOf(state, "throughput_rps"),
    ...outcomes.map((o) => seriesOf(state, "outcome_rate", { outcome: o })),
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

export function outcomesFor(scopes: ScopeSummary[]): string[] {
  const seen = new Map<string, number>();
  for (const s of scopes) {
    for (const [outcome, rate] of Object.entries(s.metrics?.error_rate_by_outcome ?? {})) {
      if (rate) seen.set(outcome, (seen.get(outcome) ?? 0) + rate);
    }
  }
  const ranked = [...seen.entries()].sort((a, b) => b[1] - a[1]).map(([o]) => o);
  return [...new Set([...ranked, ...DEFAULT_OUTCOMES])].slice(0, MAX_OUTCOMES);
}
