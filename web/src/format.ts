// Number and time formatting shared by the views. Missing values print as an em dash, never 0.

export const DASH = "\u2014";

export function pct(value: number | null | undefined, digits = 1): string {
  return value === null || value === undefined ? DASH : `${(value * 100).toFixed(digits)} %`;
}

export function ms(value: number | null | undefined): string {
  if (value === null || value === undefined) return DASH;
  return value >= 10_000 ? `${(value / 1000).toFixed(1)} s` : `${Math.round(value)} ms`;
}

export function rps(value: number | null | undefined): string {
  if (value === null || value === undefined) return DASH;
  return value >= 100 ? `${Math.round(value)}/s` : `${value.toFixed(1)}/s`;
}

export function count(value: number | null | undefined): string {
  return value === null || value === undefined ? DASH : Math.round(value).toLocaleString("en");
}

export function ago(seconds: number): string {
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5_400) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172_800) return `${(seconds / 3_600).toFixed(1)} h`;
  return `${(seconds / 86_400).toFixed(1)} d`;
}

export function clock(epochMs: number): string {
  const d = new Date(epochMs);
  const pad = (n: number): string => String(n).padStart(2, "0");
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  );
}

/** A metric value in the unit its name says (``*_ms``, ``*_rate``, ``*_rps``). */
export function metricValue(metric: string, value: number | null | undefined): string {
  if (metric.endsWith("_ms")) return ms(value);
  if (metric.endsWith("_rate")) return pct(value, 2);
  if (metric.endsWith("_rps")) return rps(value);
  return value === null || value === undefined ? DASH : String(Math.round(value * 100) / 100);
}

/** An element with attributes and children (text or elements). */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string | null)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  for (const child of children) {
    if (child !== null) node.append(child);
  }
  return node;
}
