// The wasmlens view: one page, four screens, drawn from the JSON API (/api/...) and
// refreshed by polling. No library: it must work offline, from the binary alone.
// Everything a guest or a client can influence is put in the page as text, never as HTML.
"use strict";

const REFRESH_MS = 2000;
let timer = null;

// An element with attributes and children (strings become text nodes).
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    // Through the CSSOM: the page's policy refuses style attributes.
    else if (k === "style") Object.assign(el.style, v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

function svg(tag, attrs) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  return el;
}

async function api(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

function ms(ns) {
  const v = ns / 1e6;
  return v >= 1000 ? `${(v / 1000).toFixed(2)} s` : v >= 10 ? `${v.toFixed(0)} ms` : `${v.toFixed(2)} ms`;
}

function bytes(n) {
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(0)} KiB`;
  return `${n} B`;
}

function clock(ns) {
  const d = new Date(ns / 1e6);
  return d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
}

function number(v, digits = 1) {
  if (v === null || v === undefined) return "–";
  if (Math.abs(v) >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (Math.abs(v) >= 1e4) return `${(v / 1e3).toFixed(0)}k`;
  return Number.isInteger(v) ? String(v) : v.toFixed(digits);
}

function show(...nodes) {
  const main = document.getElementById("main");
  main.replaceChildren(...nodes.filter((n) => n !== null && n !== undefined));
}

function repeat(fn) {
  clearTimeout(timer);
  const tick = async () => {
    try {
      await fn();
    } catch (err) {
      show(h("p", { class: "bad" }, `The view could not load: ${err.message}`));
    }
    timer = setTimeout(tick, REFRESH_MS);
  };
  tick();
}

// --- plots --------------------------------------------------------------------------

// A line plot of one or more series over `times`; nulls break the line. A `limit` draws
// a dashed line at that value. `data-points` counts the points that have a value above 0,
// so that a test (or a person) can tell an empty plot from a flat one.
function plot(title, times, series, opts = {}) {
  const W = 300, H = 90, pad = 2;
  const values = series.flatMap((s) => s.values).filter((v) => v !== null && v !== undefined);
  let max = Math.max(opts.limit || 0, ...values, 0);
  if (max === 0) max = 1;
  const x = (i) => pad + (i / Math.max(times.length - 1, 1)) * (W - 2 * pad);
  const y = (v) => H - pad - (v / max) * (H - 2 * pad);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none" });
  chart.append(svg("line", { x1: 0, y1: H - pad, x2: W, y2: H - pad, stroke: "#dde1e6" }));
  if (opts.limit) {
    chart.append(svg("line", { x1: 0, x2: W, y1: y(opts.limit), y2: y(opts.limit), stroke: "#c93a3a", "stroke-dasharray": "4 3" }));
  }
  for (const s of series) {
    let d = "", open = false;
    s.values.forEach((v, i) => {
      if (v === null || v === undefined) { open = false; return; }
      d += `${open ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
      open = true;
    });
    chart.append(svg("path", { d, fill: "none", stroke: s.color, "stroke-width": 1.5, "vector-effect": "non-scaling-stroke" }));
  }
  // The newest complete point: the last one is still filling.
  const latest = (s) => s.values.slice(0, -1).reverse().find((v) => v !== null && v !== undefined);
  const shown = (v) => (v === null || v === undefined ? "–" : (opts.format || number)(v));
  const legend = series.length > 1
    ? h("span", { class: "legend" }, series.map((s) => h("span", { style: { color: s.color } }, `${s.name} ${shown(latest(s))}`)))
    : h("b", {}, `${shown(latest(series[0]))}${opts.unit || ""}`);
  const points = values.filter((v) => v > 0).length;
  return h("div", { class: "plot", "data-test": "plot", "data-title": title, "data-points": points },
    h("div", { class: "title" }, h("span", {}, title, opts.limit ? ` (limit ${shown(opts.limit)})` : ""), legend),
    chart);
}

// --- overview -----------------------------------------------------------------------

async function overview() {
  const resolution = new URLSearchParams(location.search).get("resolution") || "1s";
  const choose = h("select", { onchange: (e) => go(`/?resolution=${e.target.value}`) },
    [["1s", "last 5 minutes, by the second"], ["10s", "last hour, by 10 seconds"], ["1m", "last hour, by the minute"]]
      .map(([v, label]) => h("option", { value: v, selected: v === resolution }, label)));
  repeat(async () => {
    const [data, workloads] = await Promise.all([api(`/api/overview?resolution=${resolution}`), api("/api/workloads")]);
    const t = data.times;
    const routes = data.routes.map((r) => h("div", { class: "card", "data-test": "route" },
      h("h2", {}, `Route ${r.route}`, r.component ? h("span", { class: "muted" }, ` → component ${r.component}`) : ""),
      h("div", { class: "plots" },
        plot("requests/s", t, [{ name: "req/s", color: "#2f6fdf", values: r.requests_per_s }]),
        plot("error rate", t, [{ name: "errors", color: "#c93a3a", values: r.error_rate.map((v) => v === null ? null : v * 100) }], { unit: " %" }),
        plot("latency (ms)", t, [
          { name: "p50", color: "#2d8a4e", values: r.p50_ms },
          { name: "p95", color: "#c98a1a", values: r.p95_ms },
          { name: "p99", color: "#c93a3a", values: r.p99_ms },
        ]))));
    const components = data.components.map((c) => h("div", { class: "card", "data-test": "component" },
      h("h2", {}, `Component ${c.component}`),
      h("div", { class: "plots" },
        plot("invocations/s", t, [{ name: "inv/s", color: "#2f6fdf", values: c.invocations_per_s }]),
        plot("instances active", t, [{ name: "instances", color: "#7b5bd6", values: c.instances_active }]),
        plot("instantiation (ms)", t, [{ name: "ms", color: "#1a9aa0", values: c.instantiation_ms }], { unit: " ms" }),
        plot("fuel per invocation", t, [{ name: "fuel", color: "#c98a1a", values: c.fuel_per_invocation }], { limit: c.fuel_limit }),
        plot("memory peak", t, [{ name: "bytes", color: "#2d8a4e", values: c.memory_peak_bytes }], { limit: c.memory_limit_bytes, format: bytes }))));
    const names = workloads.map((w) => `${w.name} (${w.state})`).join(", ");
    const empty = routes.length + components.length === 0
      ? h("p", { class: "muted" }, "Nothing measured yet: send the workload a request, and it shows here within a second or two.")
      : null;
    show(h("h1", {}, "Overview ", h("span", { class: "muted" }, names)), h("p", {}, choose), empty, ...routes, ...components);
  });
}

// --- traces -------------------------------------------------------------------------

const TRACE_FILTERS = [
  ["route", "route", "text"], ["component", "component", "text"], ["status", "status", "number"],
  ["min_duration_ms", "min duration (ms)", "number"],
];

async function traces() {
  const params = new URLSearchParams(location.search);
  const form = h("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); go(`/traces?${new URLSearchParams(new FormData(e.target))}`); } },
    TRACE_FILTERS.map(([name, label, type]) => h("label", {}, label, h("input", { name, type, value: params.get(name) || "", size: 12 }))),
    h("label", {}, "errors only", h("input", { type: "checkbox", name: "errors", value: "true", checked: params.get("errors") === "true" })),
    h("button", { type: "submit" }, "Filter"));
  const table = h("table", { "data-test": "traces" });
  show(h("h1", {}, "Traces"), form, table);
  repeat(async () => {
    const list = await api(`/api/traces?${params}`);
    table.replaceChildren(
      h("tr", {}, ["time", "trace", "status", "error", "components", "spans", "duration"].map((c) => h("th", { class: c === "duration" || c === "spans" ? "num" : "" }, c))),
      ...list.map((t) => h("tr", { class: t.failed ? "failed" : "", "data-test": "trace-row", "data-failed": String(t.failed) },
        h("td", {}, clock(t.start_unix_nano)),
        h("td", {}, h("a", { href: `/traces/${t.trace_id}` }, t.method ? `${t.method} ${t.route || ""}` : t.name)),
        h("td", {}, t.status_code ?? ""),
        h("td", { class: "bad" }, t.error_type || ""),
        h("td", {}, t.components.map((c) => h("span", { class: "tag" }, c))),
        h("td", { class: "num" }, t.spans),
        h("td", { class: "num" }, ms(t.duration_ns)))));
    if (list.length === 0) table.append(h("tr", {}, h("td", { colspan: 7, class: "muted" }, "No trace matches yet.")));
  });
}

// --- one trace ----------------------------------------------------------------------

// The spans whose details are open, kept across refreshes.
const open = new Set();

async function trace(id) {
  repeat(async () => {
    const t = await api(`/api/traces/${id}`);
    const spans = t.spans;
    const start = Math.min(...spans.map((s) => s.start_unix_nano));
    const end = Math.max(...spans.map((s) => s.end_unix_nano));
    const span = Math.max(end - start, 1);
    const ids = new Set(spans.map((s) => s.span_id));
    const children = new Map();
    for (const s of spans) {
      const parent = ids.has(s.parent_span_id) ? s.parent_span_id : "";
      if (!children.has(parent)) children.set(parent, []);
      children.get(parent).push(s);
    }
    const rows = [];
    const walk = (parent, depth) => {
      for (const s of (children.get(parent) || []).sort((a, b) => a.start_unix_nano - b.start_unix_nano)) {
        rows.push(spanRow(s, depth, start, span, open));
        if (open.has(s.span_id)) rows.push(spanDetails(s));
        walk(s.span_id, depth + 1);
      }
    };
    walk("", 0);
    const summary = t.summary;
    const title = summary ? (summary.method ? `${summary.method} ${summary.route || ""}` : summary.name) : "Trace (still running)";
    show(
      h("h1", {}, title, " ", h("span", { class: "muted" }, id)),
      h("p", {},
        summary ? h("span", {}, `${ms(summary.duration_ns)} · ${spans.length} spans · `,
          summary.status_code ? `status ${summary.status_code} · ` : "",
          summary.failed ? h("b", { class: "bad", "data-test": "trace-failed" }, `failed${summary.error_type ? `: ${summary.error_type}` : ""} · `) : "") : "",
        h("a", { href: `/api/traces/${id}/otlp.json`, download: `trace-${id}.otlp.json` }, "download as OTLP JSON")),
      h("div", { class: "card waterfall", "data-test": "waterfall" }, rows),
      h("h2", {}, `Log records (${t.logs.length})`),
      logTable(t.logs, false));
  });
}

function spanRow(s, depth, start, total, open) {
  const failed = s.status === "error";
  const guest = s.scope !== "wasmlens";
  const left = ((s.start_unix_nano - start) / total) * 100;
  const width = ((s.end_unix_nano - s.start_unix_nano) / total) * 100;
  const kind = failed ? "error" : guest ? "guest" : s.kind === "client" ? "client" : "";
  const toggle = () => { open.has(s.span_id) ? open.delete(s.span_id) : open.add(s.span_id); };
  return h("div", { class: "row", "data-test": "span-row", "data-name": s.name, "data-failed": String(failed), onclick: () => { toggle(); route(); } },
    h("div", { class: "name", style: { paddingLeft: `${6 + depth * 14}px` }, title: s.name },
      s.name, guest ? h("span", { class: "muted" }, ` (${s.scope})`) : "", failed ? h("span", { class: "bad" }, " ✕") : ""),
    h("div", { class: "track" }, h("div", { class: `bar ${kind}`, style: { left: `${left}%`, width: `${width}%` } })),
    h("div", { class: "dur" }, ms(s.end_unix_nano - s.start_unix_nano)));
}

function spanDetails(s) {
  const pairs = (o) => Object.entries(o).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]);
  return h("div", { class: "details", "data-test": "span-details" },
    h("dl", {}, h("dt", {}, "kind"), h("dd", {}, s.kind), h("dt", {}, "status"), h("dd", {}, s.status + (s.status_message ? `: ${s.status_message}` : "")),
      h("dt", {}, "scope"), h("dd", {}, s.scope), ...pairs(s.attributes)),
    s.events.map((e) => h("div", {}, h("b", {}, `${e.name}`), h("span", { class: "muted" }, ` at ${clock(e.time_unix_nano)}`), h("dl", {}, pairs(e.attributes)))));
}

// --- logs ---------------------------------------------------------------------------

const SEVERITIES = [["", "any"], ["5", "debug"], ["9", "info"], ["13", "warn"], ["17", "error"]];

function logTable(logs, linkTraces) {
  return h("table", { "data-test": "logs" },
    h("tr", {}, ["time", "severity", "component", "message", linkTraces ? "trace" : null].filter(Boolean).map((c) => h("th", {}, c))),
    logs.map((l) => h("tr", { "data-test": "log-row" },
      h("td", {}, clock(l.time_unix_nano)),
      h("td", {}, h("span", { class: `sev ${l.severity_text}` }, l.severity_text || l.severity_number)),
      h("td", {}, l.component_id || h("span", { class: "muted" }, l.scope)),
      h("td", {}, h("pre", { class: "body" }, l.body)),
      linkTraces ? h("td", {}, l.trace_id ? h("a", { href: `/traces/${l.trace_id}` }, l.trace_id.slice(0, 8)) : "") : null)));
}

async function logs() {
  const params = new URLSearchParams(location.search);
  const form = h("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); go(`/logs?${new URLSearchParams(new FormData(e.target))}`); } },
    h("label", {}, "component", h("input", { name: "component", value: params.get("component") || "", size: 14 })),
    h("label", {}, "at least", h("select", { name: "min_severity" },
      SEVERITIES.map(([v, label]) => h("option", { value: v, selected: (params.get("min_severity") || "") === v }, label)))),
    h("button", { type: "submit" }, "Filter"));
  const holder = h("div", {});
  show(h("h1", {}, "Logs ", h("span", { class: "muted" }, "live")), form, holder);
  params.set("limit", "200");
  repeat(async () => holder.replaceChildren(logTable(await api(`/api/logs?${params}`), true)));
}

// --- workload -----------------------------------------------------------------------

async function workload() {
  repeat(async () => {
    const [workloads, memory] = await Promise.all([api("/api/workloads"), api("/api/memory")]);
    const limit = (v, f) => (v === null || v === undefined ? h("span", { class: "muted" }, "none") : f(v));
    show(h("h1", {}, "Workload"),
      ...workloads.map((w) => h("div", { class: "card", "data-test": "workload" },
        h("h2", {}, `${w.name} `, h("span", { class: "tag" }, w.state), h("span", { class: "muted" }, ` since ${clock(w.state_since_unix_nano)} · id ${w.id}`)),
        h("table", {},
          h("tr", {}, ["component", "trigger", "source", "fuel", "memory", "timeout", "grants"].map((c) => h("th", {}, c))),
          w.components.map((c) => h("tr", { "data-test": "component-row" },
            h("td", {}, c.id),
            h("td", {}, c.trigger === "http" ? `http ${c.route}` : "cli"),
            h("td", {}, c.source),
            h("td", {}, limit(c.limits.fuel, number)),
            h("td", {}, limit(c.limits.memory_bytes, bytes)),
            h("td", {}, limit(c.limits.timeout_ms, (v) => `${v} ms`)),
            h("td", {}, c.grants.length ? c.grants.map((g) => h("div", {}, g)) : h("span", { class: "muted" }, "nothing beyond the defaults"))))))),
      h("h2", {}, "The view's memory"),
      h("p", {}, `${bytes(memory.trace_bytes)} in ${memory.traces} traces, ${bytes(memory.log_bytes)} in ${memory.logs} log records, `,
        `${bytes(memory.metric_bytes)} in ${memory.metric_streams} metric streams, of ${bytes(memory.budget_bytes)}.`,
        memory.traces_not_kept ? ` ${number(memory.traces_not_kept)} ordinary traces not kept: they came faster than the view renews itself (every ten seconds); failed and slow ones are always taken.` : ""));
  });
}

// --- navigation ---------------------------------------------------------------------

function go(path) {
  history.pushState(null, "", path);
  route();
}

function route() {
  const path = location.pathname;
  const screen = path.startsWith("/traces") ? "traces" : path.startsWith("/logs") ? "logs" : path.startsWith("/workload") ? "workload" : "overview";
  for (const a of document.querySelectorAll("header nav a")) a.classList.toggle("current", a.dataset.nav === screen);
  const traceId = path.match(/^\/traces\/([0-9a-f]{32})$/);
  if (traceId) trace(traceId[1]);
  else if (screen === "traces") traces();
  else if (screen === "logs") logs();
  else if (screen === "workload") workload();
  else overview();
}

document.addEventListener("click", (e) => {
  const a = e.target.closest("a");
  if (a && a.origin === location.origin && !a.hasAttribute("download") && !a.pathname.startsWith("/api/") && !e.ctrlKey && !e.metaKey) {
    e.preventDefault();
    go(a.pathname + a.search);
  }
});
window.addEventListener("popstate", route);

async function memoryLine() {
  try {
    const m = await api("/api/memory");
    document.getElementById("memory").textContent = `${bytes(m.trace_bytes + m.log_bytes + m.metric_bytes)} of ${bytes(m.budget_bytes)} kept`;
  } catch (_) { /* the next tick tries again */ }
}
setInterval(memoryLine, 5000);
memoryLine();
route();
