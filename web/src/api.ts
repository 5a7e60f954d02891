// REST v1 client: the only way the dashboard reads data (docs/api.md). A token typed into the
// token form is kept in sessionStorage (this tab only) and sent as a Bearer token.

export type Point = [number, number | null];

export interface Freshness {
  newest_data_end_ms: number | null;
  age_s: number | null;
  stale: boolean;
}

export interface Metrics {
  requests: number;
  successes: number;
  success_rate: number | null;
  error_rate: number | null;
  error_rate_by_outcome: Record<string, number | null>;
  status_5xx_rate: number | null;
  latency_ms: { p50: number | null; p90: number | null; p95: number | null; p99: number | null };
  throughput_rps: number | null;
  bytes_in: number;
  bytes_out: number;
  distinct_proxies: number;
  late_events: number;
}

export interface BaselineDeviation {
  rule_id: string;
  metric: string;
  value: number | null;
  baseline: number | null;
  sigma: number | null;
  breach: boolean;
  state: string;
}

export interface ScopeSummary {
  pool: string;
  region: string;
  status: "ok" | "alerting" | "stale" | "no_data";
  window_start_ms: number | null;
  window_end_ms: number | null;
  freshness: Freshness;
  active_alerts: number;
  metrics: Metrics | null;
  baselines: BaselineDeviation[];
}

export interface SummaryView {
  generated_at_ms: number;
  settled_end_ms: number;
  staleness_s: number;
  scopes: ScopeSummary[];
}

export interface SeriesView {
  metric: string;
  outcome: string | null;
  pool: string | null;
  region: string | null;
  tier: string;
  step_s: number;
  start_ms: number;
  end_ms: number;
  points: Point[];
  freshness: Freshness;
}

export interface OffenderView {
  proxy_id: string;
  pool: string;
  region: string;
  metrics: Metrics;
  series: Point[];
}

export interface OffendersView {
  pool: string;
  region: string | null;
  order_by: string;
  start_ms: number;
  end_ms: number;
  step_s: number;
  proxies: OffenderView[];
}

export interface Alert {
  recorded_at_ms: number;
  fingerprint: string;
  status: string;
  alertname: string;
  rule_id: string;
  severity: string;
  pool: string;
  region: string;
  proxy_id: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  starts_at_ms: number;
  ends_at_ms: number | null;
  value: number | null;
  threshold: number | null;
  baseline: number | null;
  window_start_ms: number | null;
  window_end_ms: number | null;
}

export interface AlertsView {
  alerts: Alert[];
}

export interface PoolsView {
  since_ms: number;
  pools: { pool: string; regions: string[] }[];
}

export type ApiFailure = "token_needed" | "forbidden" | "unreachable" | "failed";

/** A read that did not give data; ``kind`` says what the page should tell the user. */
export class ApiError extends Error {
  constructor(
    readonly kind: ApiFailure,
    message: string,
    readonly status: number | null = null,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

const TOKEN_KEY = "pwm-dashboard-token";

export function storedToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function storeToken(token: string | null): void {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // storage refused (private mode): the token lasts until the page is left
  }
}

export type Params = Record<string, string | number | null | undefined>;

/** ``/api/v1/<path>?<params>`` relative to the page, without empty parameters. */
export function apiUrl(path: string, params: Params = {}): string {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") query.set(key, String(value));
  }
  const text = query.toString();
  return `api/v1/${path}${text ? `?${text}` : ""}`;
}

async function problemDetail(response: Response): Promise<string> {
  try {
    const body = (await response.json()) as { detail?: unknown };
    return typeof body.detail === "string" ? body.detail : response.statusText;
  } catch {
    return response.statusText;
  }
}

export async function getJson<T>(path: string, params: Params = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  const token = storedToken();
  if (token) headers["Authorization"] = `Bearer ${token}`;
  let response: Response;
  try {
    response = await fetch(apiUrl(path, params), { headers, cache: "no-store" });
  } catch (exc) {
    throw new ApiError("unreachable", `the API did not answer (${String(exc)})`);
  }
  if (response.ok) return (await response.json()) as T;
  const detail = await problemDetail(response);
  if (response.status === 401) throw new ApiError("token_needed", detail, 401);
  if (response.status === 403) throw new ApiError("forbidden", detail, 403);
  if (response.status === 502 || response.status === 504) {
    throw new ApiError("unreachable", detail, response.status);
  }
  throw new ApiError("failed", `${response.status}: ${detail}`, response.status);
}
