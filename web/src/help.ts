// Help on every metric: what it means, how it is computed, what to do when it is bad.
// Rendered as <details> (keyboard and screen-reader friendly, no hover needed).

import { el } from "./format";

export interface MetricHelp {
  title: string;
  means: string;
  computed: string;
  whenBad: string;
}

const WINDOW =
  "Counted in tumbling event-time windows (10 s by default) and rolled up to 1 min, 1 h and " +
  "1 d; a chart step merges the counts of its windows.";
const PERCENTILE =
  "Read from the merged log-bucket latency histogram of the step (relative error under 1 %); " +
  "percentiles are never averaged across steps, pools or regions.";

export const HELP: Record<string, MetricHelp> = {
  success_rate: {
    title: "Success rate",
    means: "Share of proxied requests that ended with outcome success.",
    computed: `successes / requests of the window or step. ${WINDOW} Empty steps are gaps.`,
    whenBad:
      "Open the scope, look at errors by outcome and at the top offending proxies: one bad " +
      "proxy, one region or the whole pool?",
  },
  error_rate: {
    title: "Error rate",
    means: "Share of requests that did not succeed (timeouts, HTTP errors, proxy errors...).",
    computed: `1 - success rate, from the same counts. ${WINDOW}`,
    whenBad:
      "Check errors by outcome: timeouts point at slow proxies or targets, http_error at the " +
      "targets, proxy_error and proxy_auth_error at the provider. Drain failing proxies.",
  },
  latency: {
    title: "Latency p50 / p95 / p99",
    means:
      "How long requests took, measured by the producer around the whole request: half of " +
      "them finish within p50, 95 % within p95, 99 % within p99.",
    computed: `${PERCENTILE} ${WINDOW}`,
    whenBad:
      "A rising p95 with a flat p50 is a slow minority (a few proxies: see top offenders by " +
      "error rate, or a region); everything rising is congestion or a slow upstream.",
  },
  latency_p95_ms: {
    title: "p95 latency",
    means: "95 % of the requests of the window finished within this time.",
    computed: PERCENTILE,
    whenBad: "Drill down to the region and the proxies; compare with the baseline if shown.",
  },
  throughput_rps: {
    title: "Throughput",
    means: "Requests per second handled by the scope.",
    computed: `requests of the step / the step's length in seconds. ${WINDOW}`,
    whenBad:
      "A drop to nothing is a silent scope (hosts stopped reporting or traffic moved); a surge " +
      "against the baseline is a crawl campaign or a retry storm.",
  },
  outcomes: {
    title: "Errors by outcome",
    means: "Share of all requests ending with each failure outcome; they add up to the error rate.",
    computed: `requests with that outcome / all requests of the step. ${WINDOW}`,
    whenBad:
      "timeout: slow proxies or targets. connection_error / tls_error: proxies unreachable. " +
      "proxy_error / proxy_auth_error: the provider. http_error: the targets answer 4xx/5xx. " +
      "rate_limited: slow down.",
  },
  offenders: {
    title: "Top offending proxies",
    means:
      "The proxies of the pool (and region) with the highest error rate over the range, " +
      "among those with at least 10 requests. Proxies are HMAC ids: addresses never leave the host.",
    computed: "From the per-proxy 1-minute table (proxy_1m); each series has steps of 1 min or more.",
    whenBad: "Take a proxy failing most of its requests out of rotation.",
  },
  baseline: {
    title: "Deviation from baseline",
    means:
      "How far the latest window is from what the scope usually does, as learnt by the " +
      "baseline rules of the rules file (mean and standard deviation, per hour of week or EWMA).",
    computed:
      "sigma = (value - learnt mean) / learnt standard deviation; a breach is beyond the rule's " +
      "k_sigma and min_abs_change. Only pool x region baseline rules appear in the grid; pool " +
      "and region baseline rules show up as alerts.",
    whenBad: "Compare with the charts: a breach that lasts becomes an alert.",
  },
  alerts: {
    title: "Alerts",
    means: "Alerts firing now (their newest state change is firing) and the recent history.",
    computed:
      "Rules of the rules file evaluated as windows close; each state change is kept in the " +
      "alert history. Value is the rule's metric in the breaching window, against its " +
      "threshold or learnt baseline.",
    whenBad: "Follow the rule's next steps; resolved alerts stay in the history.",
  },
  freshness: {
    title: "Freshness",
    means: "Age of the newest stored window of the scope.",
    computed:
      "now - end of the newest stored window. Older than two windows: the page says the data " +
      "is stale (the fleet or the pipeline stopped reporting).",
    whenBad:
      "Check the fleet hosts' producers and the pipeline (GET /readyz, /metrics lag gauges).",
  },
};

let helpCounter = 0;

/** A disclosure "?" that explains ``key``; ``label`` names it for screen readers. */
export function helpFor(key: string): HTMLElement {
  const help = HELP[key];
  if (help === undefined) throw new Error(`no help for ${key}`);
  helpCounter += 1;
  const id = `help-${key}-${helpCounter}`;
  const summary = el("summary", { "aria-label": `About ${help.title.toLowerCase()}`, title: `About ${help.title}` }, "?");
  const body = el(
    "div",
    { class: "help-body", id, role: "note" },
    el("p", {}, el("strong", {}, "What it means. "), help.means),
    el("p", {}, el("strong", {}, "How it is computed. "), help.computed),
    el("p", {}, el("strong", {}, "When it is bad. "), help.whenBad),
  );
  const details = el("details", { class: "help", "data-help": key }, summary, body);
  return details;
}
