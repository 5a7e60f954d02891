// Time-series charts (uPlot). A step without data is null, drawn as a gap, never as 0. Alerts of
// the range are drawn as annotations: a shaded band from firing to resolved (or now) and a marker
// element (focusable, titled) at each state change; a learnt baseline is a dashed line, and the
// part of a series beyond it in the breaching direction is highlighted.

import uPlot from "uplot";
import type { Alert, Point } from "./api";
import { clock, el, metricValue } from "./format";

export interface Line {
  label: string;
  metric: string;
  points: Point[];
  color: string;
  width?: number;
}

export interface Baseline {
  metric: string;
  /** The learnt mean. */
  value: number;
  /** One learnt standard deviation, when known: steps beyond 3 of them are highlighted. */
  spread: number | null;
  label: string;
}

export interface ChartBaseline extends Baseline {
  /** Index in ``lines`` of the series the baseline is about. */
  line: number;
}

export interface ChartSpec {
  id: string;
  title: string;
  unit: "rate" | "ms" | "rps";
  lines: Line[];
  alerts: Alert[];
  baseline: ChartBaseline | null;
  startMs: number;
  endMs: number;
}

const ALERT_FILL = "rgba(200, 30, 30, 0.10)";
const ALERT_EDGE = "#b3261e";
const RESOLVED_EDGE = "#1b6e20";
const DEVIATION_FILL = "rgba(230, 120, 0, 0.30)";

function tick(unit: ChartSpec["unit"], v: number): string {
  if (unit === "rate") return `${Math.round(v * 1000) / 10}%`;
  if (unit === "ms") return v >= 10_000 ? `${v / 1000} s` : `${v} ms`;
  return `${v}/s`;
}

function formatValue(unit: ChartSpec["unit"], v: number | null): string {
  const metric = unit === "rate" ? "x_rate" : unit === "ms" ? "x_ms" : "x_rps";
  return metricValue(metric, v);
}

/** Aligned data: one x array (seconds) from the first line, then each line's values. */
function aligned(lines: Line[]): uPlot.AlignedData {
  const first = lines[0]?.points ?? [];
  const xs = first.map((p) => p[0] / 1000);
  const ys = lines.map((line) => {
    const byX = new Map(line.points.map((p) => [p[0] / 1000, p[1]]));
    return xs.map((x) => byX.get(x) ?? null);
  });
  return [xs, ...ys] as uPlot.AlignedData;
}

export function hasData(lines: Line[]): boolean {
  return lines.some((line) => line.points.some((p) => p[1] !== null));
}

function annotationsPlugin(current: () => ChartSpec, markers: HTMLElement): uPlot.Plugin {
  const draw = (u: uPlot): void => {
    const spec = current();
    const ctx = u.ctx;
    const { left, top, width, height } = u.bbox;
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top, width, height);
    ctx.clip();
    // the learnt baseline (dashed) and the steps more than 3 standard deviations from it
    const baseline = spec.baseline;
    if (baseline !== null) {
      const yb = u.valToPos(baseline.value, "y", true);
      ctx.strokeStyle = "#6b4e00";
      ctx.setLineDash([6, 4]);
      ctx.lineWidth = 1.5 * devicePixelRatio;
      ctx.beginPath();
      ctx.moveTo(left, yb);
      ctx.lineTo(left + width, yb);
      ctx.stroke();
      ctx.setLineDash([]);
      const xs = u.data[0];
      const ys = u.data[baseline.line + 1];
      const spread = baseline.spread;
      ctx.fillStyle = DEVIATION_FILL;
      if (ys && spread !== null && spread > 0) {
        for (let i = 0; i < xs.length; i++) {
          const v = ys[i];
          const x = xs[i];
          if (v === null || v === undefined || x === undefined) continue;
          if (Math.abs(v - baseline.value) <= 3 * spread) continue;
          const next = xs[i + 1] ?? x + (x - (xs[i - 1] ?? x));
          const x0 = u.valToPos(x, "x", true);
          const x1 = u.valToPos(next, "x", true);
          const yv = u.valToPos(v, "y", true);
          ctx.fillRect(x0, Math.min(yv, yb), Math.max(1, x1 - x0), Math.abs(yb - yv));
        }
      }
    }
    for (const alert of spec.alerts) {
      const x0 = u.valToPos(Math.max(alert.starts_at_ms, spec.startMs) / 1000, "x", true);
      const end = alert.ends_at_ms ?? spec.endMs;
      const x1 = u.valToPos(Math.min(end, spec.endMs) / 1000, "x", true);
      ctx.fillStyle = ALERT_FILL;
      ctx.fillRect(x0, top, Math.max(2, x1 - x0), height);
    }
    ctx.restore();
    placeMarkers(u, spec, markers);
  };
  return { hooks: { draw: [draw] } };
}

function placeMarkers(u: uPlot, spec: ChartSpec, markers: HTMLElement): void {
  markers.replaceChildren();
  for (const alert of spec.alerts) {
    const edges: [number, string][] = [[alert.starts_at_ms, "firing"]];
    if (alert.ends_at_ms !== null) edges.push([alert.ends_at_ms, "resolved"]);
    for (const [atMs, kind] of edges) {
      if (atMs < spec.startMs || atMs > spec.endMs) continue;
      const x = u.valToPos(atMs / 1000, "x");
      const scope = [alert.pool, alert.region].filter(Boolean).join("/") || "fleet";
      const text = `${alert.alertname} ${kind} ${clock(atMs)} (${scope})`;
      const marker = el("span", {
        class: `annotation annotation-${kind}`,
        role: "img",
        tabindex: "0",
        title: text,
        "aria-label": text,
        "data-alertname": alert.alertname,
        "data-kind": kind,
      });
      marker.style.left = `${x}px`;
      marker.style.borderColor = kind === "firing" ? ALERT_EDGE : RESOLVED_EDGE;
      markers.append(marker);
    }
  }
}

export class Chart {
  readonly root: HTMLElement;
  private plot: uPlot | null = null;
  private readonly body: HTMLElement;
  private readonly empty: HTMLElement;
  private readonly caption: HTMLElement;
  private readonly baselineNote: HTMLElement;
  private key = "";
  private spec: ChartSpec | null = null;

  constructor(readonly id: string, title: string, help: HTMLElement) {
    this.body = el("div", { class: "chart-body" });
    this.empty = el("p", { class: "no-data", hidden: "" });
    this.caption = el("p", { class: "chart-caption" });
    this.baselineNote = el("p", { class: "baseline-note", hidden: "" });
    this.root = el(
      "figure",
      { class: "chart", id, "aria-labelledby": `${id}-title` },
      el("figcaption", { class: "chart-title" }, el("span", { id: `${id}-title` }, title), " ", help),
      this.empty,
      this.body,
      this.baselineNote,
      this.caption,
    );
  }

  private width(): number {
    return Math.max(280, (this.root.clientWidth || 600) - 16);
  }

  render(spec: ChartSpec, scope: string, caption: string): void {
    this.caption.textContent = caption;
    if (!hasData(spec.lines)) {
      this.plot?.destroy();
      this.plot = null;
      this.key = "";
      this.body.replaceChildren();
      this.empty.hidden = false;
      this.empty.textContent = `No data for ${scope} in this range: no requests were counted.`;
      this.root.dataset["state"] = "no-data";
      return;
    }
    this.spec = spec;
    this.baselineNote.hidden = spec.baseline === null;
    this.baselineNote.textContent = spec.baseline === null ? "" : `Dashed: ${spec.baseline.label}`;
    this.root.dataset["baseline"] = spec.baseline === null ? "" : String(spec.baseline.value);
    this.empty.hidden = true;
    this.root.dataset["state"] = "data";
    this.root.dataset["alerts"] = String(spec.alerts.length);
    const data = aligned(spec.lines);
    const key = spec.lines.map((l) => l.label).join("|") + `|${spec.baseline?.value ?? ""}`;
    if (this.plot !== null && key === this.key) {
      this.plot.setData(data);
      if (Math.abs(this.plot.width - this.width()) > 1) this.resize();
      return;
    }
    this.plot?.destroy();
    this.key = key;
    const markers = el("div", { class: "annotations", "aria-label": "Alert annotations" });
    const unit = spec.unit;
    const opts: uPlot.Options = {
      width: this.width(),
      height: 200,
      scales: { x: { time: true }, y: unit === "rate" ? { range: (_u, _min, max) => [0, Math.max(max, 0.01)] } : {} },
      axes: [
        { stroke: "#333" },
        { stroke: "#333", size: 64, values: (_u, ticks) => ticks.map((t) => tick(unit, t)) },
      ],
      series: [
        {},
        ...spec.lines.map((line) => ({
          label: line.label,
          stroke: line.color,
          width: line.width ?? 1.5,
          spanGaps: false,
          value: (_u: uPlot, v: number | null) => formatValue(unit, v),
        })),
      ],
      legend: { live: true },
      plugins: [annotationsPlugin(() => this.spec ?? spec, markers)],
    };
    this.body.replaceChildren();
    this.plot = new uPlot(opts, data, this.body);
    this.plot.over.append(markers);
  }

  resize(): void {
    this.plot?.setSize({ width: this.width(), height: 200 });
  }
}

/** A small line of one proxy's history (no axes), for the offenders table. */
export function sparkline(points: Point[], unit: ChartSpec["unit"], label: string): HTMLElement {
  const holder = el("div", { class: "sparkline", role: "img", "aria-label": label });
  if (!points.some((p) => p[1] !== null)) {
    holder.textContent = "no data";
    return holder;
  }
  const data: uPlot.AlignedData = [points.map((p) => p[0] / 1000), points.map((p) => p[1])];
  const opts: uPlot.Options = {
    width: 180,
    height: 36,
    cursor: { show: false },
    legend: { show: false },
    scales: { x: { time: true }, y: unit === "rate" ? { range: [0, 1] } : {} },
    axes: [{ show: false }, { show: false }],
    series: [{}, { stroke: "#b3261e", width: 1, spanGaps: false }],
  };
  // uPlot measures its root: attach after the holder is in the document
  queueMicrotask(() => new uPlot(opts, data, holder));
  return holder;
}
