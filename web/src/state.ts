// The view's state lives in the URL (shareable; the back button restores it). Parameter names
// are REST v1's where they exist: range, start, end (epoch seconds), pool, region.

export const RANGES = ["15m", "1h", "6h", "24h", "7d", "30d", "90d"] as const;
export const REFRESH_CHOICES_S = [5, 10, 30, 60, 300] as const;
export const DEFAULT_REFRESH_S = 10;
const LABEL = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;
const PROXY = /^[A-Za-z0-9_-]{1,128}$/;

export interface ViewState {
  /** A preset of RANGES, or "custom" with start/end. */
  range: string;
  startS: number | null;
  endS: number | null;
  pool: string | null;
  region: string | null;
  proxy: string | null;
  refreshS: number;
}

export function defaultState(): ViewState {
  return {
    range: "1h",
    startS: null,
    endS: null,
    pool: null,
    region: null,
    proxy: null,
    refreshS: DEFAULT_REFRESH_S,
  };
}

function label(value: string | null, pattern: RegExp): string | null {
  return value !== null && pattern.test(value) ? value : null;
}

function epochS(value: string | null): number | null {
  if (value === null || !/^[0-9]{1,11}$/.test(value)) return null;
  return Number(value);
}

/** The state a query string describes; anything invalid falls back to the default. */
export function parseState(search: string): ViewState {
  const q = new URLSearchParams(search);
  const state = defaultState();
  const range = q.get("range");
  const startS = epochS(q.get("start"));
  const endS = epochS(q.get("end"));
  if (startS !== null && endS !== null && startS < endS) {
    state.range = "custom";
    state.startS = startS;
    state.endS = endS;
  } else if (range !== null && (RANGES as readonly string[]).includes(range)) {
    state.range = range;
  }
  state.pool = label(q.get("pool"), LABEL);
  state.region = label(q.get("region"), LABEL);
  state.proxy = state.pool === null ? null : label(q.get("proxy"), PROXY);
  const refresh = Number(q.get("refresh"));
  if ((REFRESH_CHOICES_S as readonly number[]).includes(refresh)) state.refreshS = refresh;
  return state;
}

export function formatState(state: ViewState): string {
  const q = new URLSearchParams();
  if (state.range === "custom" && state.startS !== null && state.endS !== null) {
    q.set("start", String(state.startS));
    q.set("end", String(state.endS));
  } else {
    q.set("range", state.range);
  }
  if (state.pool) q.set("pool", state.pool);
  if (state.region) q.set("region", state.region);
  if (state.pool && state.proxy) q.set("proxy", state.proxy);
  if (state.refreshS !== DEFAULT_REFRESH_S) q.set("refresh", String(state.refreshS));
  return `?${q.toString()}`;
}

/** The REST v1 range parameters of the view (``range`` or ``start``/``end``). */
export function rangeParams(state: ViewState): Record<string, string | number> {
  if (state.range === "custom" && state.startS !== null && state.endS !== null) {
    return { start: state.startS, end: state.endS };
  }
  return { range: state.range };
}

/** The REST v1 scope parameters (pool, region) of the view. */
export function scopeParams(state: ViewState): Record<string, string> {
  const out: Record<string, string> = {};
  if (state.pool) out["pool"] = state.pool;
  if (state.region) out["region"] = state.region;
  return out;
}

export function scopeName(state: ViewState): string {
  const where = [state.pool ?? "all pools", state.region ?? "all regions"].join(" / ");
  return state.proxy ? `proxy ${state.proxy} (${where})` : where;
}
