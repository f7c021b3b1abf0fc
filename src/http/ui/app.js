// The submissions page: a token kept in this tab only, the list with filters, live states.
import { campaignsView } from "./campaigns.js";

const view = document.getElementById("view");
const token = () => sessionStorage.getItem("token");

async function api(path, init = {}) {
  const headers = { Authorization: `Bearer ${token()}`, ...(init.headers || {}) };
  return fetch(path, { ...init, headers });
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  for (const child of children) node.append(child ?? "");
  return node;
}

function showSignin() {
  document.getElementById("signin").hidden = false;
  document.getElementById("signout").hidden = true;
  view.replaceChildren();
}

document.getElementById("signin").addEventListener("submit", async (event) => {
  event.preventDefault();
  sessionStorage.setItem("token", document.getElementById("token").value);
  const answer = await api("/v1/submissions?limit=1");
  if (answer.ok) { route(); return; }
  sessionStorage.removeItem("token");
  document.getElementById("signin-error").textContent = "That token is not accepted.";
});

document.getElementById("signout").addEventListener("click", () => {
  sessionStorage.removeItem("token");
  showSignin();
});

let poll = null;
/** A duration as kubectl prints it ("45s", "3m12s", "5h2m", "3d4h", "12d"). */
function humanDuration(ms) {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return "<invalid>";
  const s = Math.max(seconds, 0);
  const minutes = Math.floor(s / 60), hours = Math.floor(s / 3600), days = Math.floor(hours / 24);
  const and = (big, unit, small, smallUnit) => small ? `${big}${unit}${small}${smallUnit}` : `${big}${unit}`;
  if (s < 120) return `${s}s`;
  if (minutes < 10) return and(minutes, "m", s % 60, "s");
  if (minutes < 180) return `${minutes}m`;
  if (hours < 8) return and(hours, "h", minutes % 60, "m");
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) return and(days, "d", hours % 24, "h");
  if (days < 365 * 2) return `${days}d`;
  if (days < 365 * 8) return and(Math.floor(days / 365), "y", days % 365, "d");
  return `${Math.floor(days / 365)}y`;
}

/** How long ago `iso` was, kubectl's way, with the full time in the browser's zone on hover. */
function ago(iso) {
  if (!iso) return el("span", {}, "<none>");
  const at = new Date(iso);
  return el("time", { datetime: iso, title: at.toLocaleString() }, humanDuration(Date.now() - at));
}

/** A state as a badge: its name, and a colour that only repeats it. */
function badge(state) {
  return el("span", { class: `badge state-${state}` }, state);
}

async function listView() {
  // Each filter's label and input stay together when the row wraps (on a phone).
  const field = (id, text) => el("span", { class: "field" },
    el("label", { for: id }, text), el("input", { id }));
  const filters = el("form", { class: "filters", id: "filters" },
    field("f-state", "State"), field("f-label", "Label k=v"), field("f-name", "Name"),
    field("f-cluster", "Cluster"), field("f-queue", "Queue"),
    el("button", { type: "submit" }, "Filter"));
  const body = el("tbody");
  // The page's rows sort by a column's header (again: the other way); the server's order,
  // newest first, until one is chosen. Cluster is shown only when the rows need it.
  const columns = [["Name", (s) => s.name || s.id], ["State", (s) => ORDER.indexOf(s.state)],
    ["Cluster", (s) => s.cluster || ""],
    ["Message", (s) => s.message || ""], ["Created", (s) => s.created_at]];
  const clusterColumn = columns.findIndex(([title]) => title === "Cluster");
  let items = [];
  let sortBy = null, ascending = true;
  const heads = columns.map(([title], index) => {
    const button = el("button", { type: "button", class: "sort", "data-column": title }, title);
    button.addEventListener("click", () => {
      ascending = sortBy === index ? !ascending : true;
      sortBy = index;
      render();
    });
    return el("th", { "aria-sort": "none" }, button);
  });
  const headRow = el("tr", {});
  const table = el("table", {}, el("thead", {}, headRow), body);
  const render = () => {
    const shown = columns.map((_, index) => index !== clusterColumn || namesClusters(items));
    if (sortBy !== null && !shown[sortBy]) sortBy = null;
    headRow.replaceChildren(...heads.filter((_, index) => shown[index]));
    const rows = [...items];
    if (sortBy !== null) {
      const key = columns[sortBy][1];
      rows.sort((a, b) => {
        const [x, y] = [key(a), key(b)];
        return (x < y ? -1 : x > y ? 1 : 0) * (ascending ? 1 : -1);
      });
    }
    heads.forEach((head, index) => head.setAttribute("aria-sort",
      index !== sortBy ? "none" : ascending ? "ascending" : "descending"));
    // A cell for each of `columns`, in their order; those not shown are left out.
    body.replaceChildren(...rows.map((s) => el("tr", {}, ...[
      el("td", {}, el("a", { href: `#/submissions/${s.id}` }, s.name || s.id)),
      el("td", {}, badge(s.state)), el("td", {}, s.cluster || "<none>"),
      el("td", {}, s.message || ""), el("td", {}, ago(s.created_at)),
    ].filter((_, index) => shown[index]))));
  };
  // Pages of PAGE rows, newest first: the cursor of the page shown, and those before it.
  let cursor = null;
  const earlier = [];
  const newer = el("button", { type: "button", id: "newer", disabled: "" }, "Newer");
  const older = el("button", { type: "button", id: "older", disabled: "" }, "Older");
  view.replaceChildren(submitForm(), filters, table, el("nav", { class: "pages", "aria-label": "Pages" }, newer, older));
  // The filters are kept in the URL (`#/?state=...&label=...&name=...&cluster=...&queue=...`),
  // so a view can be shared.
  const shared = new URLSearchParams(location.hash.split("?")[1] || "");
  for (const [key, id] of FILTERS) document.getElementById(id).value = shared.get(key) || "";
  let next = null;
  const load = async () => {
    const query = new URLSearchParams({ limit: String(PAGE) });
    for (const [key, id] of FILTERS) {
      const value = document.getElementById(id)?.value;
      if (value) query.set(key, value);
    }
    if (cursor) query.set("cursor", cursor);
    const answer = await api(`/v1/submissions?${query}`);
    if (!answer.ok) return;
    const page = await answer.json();
    next = page.next_cursor || null;
    items = page.items;
    render();
    older.toggleAttribute("disabled", !next);
    newer.toggleAttribute("disabled", earlier.length === 0);
  };
  older.addEventListener("click", () => { if (next) { earlier.push(cursor); cursor = next; load(); } });
  newer.addEventListener("click", () => { if (earlier.length) { cursor = earlier.pop(); load(); } });
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    cursor = null;
    earlier.length = 0;
    const query = new URLSearchParams();
    for (const [key, id] of FILTERS) {
      const value = document.getElementById(id).value;
      if (value) query.set(key, value);
    }
    // Replaced, not navigated to: the list stays as it is and only the address changes.
    history.replaceState(null, "", query.size ? `#/?${query}` : "#/");
    load();
  });
  const cancelAll = el("button", { type: "button", id: "cancel-all" }, "Cancel all matching");
  filters.append(cancelAll);
  cancelAll.addEventListener("click", async () => {
    const query = new URLSearchParams({ state: "waiting,queued,pending,running", limit: "1000" });
    const filter = { state: ["waiting", "queued", "pending", "running"], labels: {} };
    const name = document.getElementById("f-name").value;
    const label = document.getElementById("f-label").value;
    const cluster = document.getElementById("f-cluster").value;
    if (name) { query.set("name", name); filter.name = name; }
    if (cluster) { query.set("cluster", cluster); filter.cluster = cluster; }
    const queue = document.getElementById("f-queue").value;
    if (queue) { query.set("queue", queue); filter.queue = queue; }
    if (label) { query.set("label", label); Object.assign(filter.labels, pairs(label)); }
    const count = await countMatching(query);
    if (count === null) return;
    if (!confirm(`Cancel ${count} active submission(s)?`)) return;
    await api("/v1/submissions/cancel", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(filter),
    });
    load();
  });
  await load();
  follow(load);
}

/**
 * Whether submissions need a Cluster column, as the command line decides: they name several
 * clusters, or one not called "default". A one-cluster user's list keeps its columns.
 */
function namesClusters(items) {
  const named = new Set(items.map((s) => s.cluster).filter(Boolean));
  return named.size > 1 || [...named].some((name) => name !== "default");
}

/** The list's filters: each query parameter and its input. */
const FILTERS = [["state", "f-state"], ["label", "f-label"], ["name", "f-name"], ["cluster", "f-cluster"],
  ["queue", "f-queue"]];

/** The states in the order of a submission's life, for sorting by state. */
const ORDER = ["waiting", "queued", "pending", "running", "succeeded", "failed", "cancelled"];

/** Rows per page of the list. */
const PAGE = 50;

/** How many submissions a list query matches, counted through every page; null on an error. */
async function countMatching(query) {
  let count = 0;
  for (;;) {
    const answer = await api(`/v1/submissions?${query}`);
    if (!answer.ok) return null;
    const page = await answer.json();
    count += page.items.length;
    if (!page.next_cursor) return count;
    query.set("cursor", page.next_cursor);
  }
}

/**
 * Reloads on each state event from `/v1/events`, resuming after the last revision seen (the
 * stream's first `id` is the present); polls instead where the server has none.
 */
let lastRevision = null;
let events = null;
async function follow(load) {
  clearInterval(poll);
  events?.abort();
  events = new AbortController();
  const signal = events.signal;
  // A burst of events (a campaign ending) reloads the page once, not once per event.
  let pending = null;
  const soon = () => { pending ??= setTimeout(() => { pending = null; load(); }, 250); };
  try {
    const after = lastRevision === null ? "" : `?after=${lastRevision}`;
    const answer = await api(`/v1/events${after}`, { signal });
    if (answer.status === 410) {
      // The events since were pruned: read everything again and follow from the present.
      lastRevision = null;
      load();
      setTimeout(() => follow(load), 2000);
      return;
    }
    if (!answer.ok || !answer.body) { poll = setInterval(load, 3000); return; }
    await readEvents(answer, (revision) => {
      if (Number.isInteger(revision)) lastRevision = revision;
    }, soon);
  } catch (error) {
    if (signal.aborted) return;
  }
  if (!signal.aborted) setTimeout(() => follow(load), 2000);
}

/**
 * Reads the Server-Sent Events of `answer` until it ends: each block's `id` to `onId`, and the
 * data of each `state` event, parsed, to `onState`.
 */
async function readEvents(answer, onId, onState) {
  const reader = answer.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const lines = buffer.slice(0, end).split("\n");
      buffer = buffer.slice(end + 2);
      const field = (name) => lines.find((line) => line.startsWith(`${name}:`))?.slice(name.length + 1).trim();
      const id = field("id");
      if (id !== undefined) onId(Number(id));
      const data = field("data");
      if (data !== undefined && field("event") === "state") onState(JSON.parse(data));
    }
  }
}

/** A submission's changes of state, oldest first, as `/v1/events` replays and follows them. */
let timelineEvents = null;
function timeline(id) {
  const list = el("ol", { id: "timeline", class: "timeline" });
  timelineEvents?.abort();
  timelineEvents = new AbortController();
  const signal = timelineEvents.signal;
  (async () => {
    try {
      const answer = await api(`/v1/events?${new URLSearchParams({ id, after: "0" })}`, { signal });
      if (!answer.ok || !answer.body) return;
      await readEvents(answer, () => {}, (event) => {
        const at = new Date(event.time);
        list.append(el("li", {},
          el("time", { datetime: event.time, title: at.toLocaleString() }, at.toLocaleTimeString()), " ",
          ...(event.previous_state ? [badge(event.previous_state), " → "] : []), badge(event.state),
          event.message ? ` ${event.message}` : ""));
      });
    } catch (error) {
      if (!signal.aborted) list.append(el("li", {}, "The changes cannot be followed now."));
    }
  })();
  return list;
}

// Where a submission waits, in Kueue or the service's own queue, in a few words:
// "analysis (priority high), position 0".
function queueSummary(q) {
  let text = (q.name ?? "the service's queue") + (q.priority_class ? ` (priority ${q.priority_class})` : "");
  if (q.admitted) text += ", admitted";
  else if (q.position != null) text += `, position ${q.position}`;
  else text += ", waiting to be admitted";
  if (q.evictions) text += q.evictions === 1 ? ", evicted once" : `, evicted ${q.evictions} times`;
  return text;
}

async function detailView(id) {
  clearInterval(poll);
  events?.abort();
  const answer = await api(`/v1/submissions/${encodeURIComponent(id)}`);
  if (!answer.ok) { view.replaceChildren(el("p", { class: "error" }, "Not found.")); return; }
  const s = await answer.json();
  const log = el("pre", { class: "log", id: "log" });
  const cancel = el("button", { type: "button", id: "cancel" }, "Cancel");
  cancel.addEventListener("click", async () => {
    if (!confirm(`Cancel ${s.name || s.id}?`)) return;
    await api(`/v1/submissions/${encodeURIComponent(id)}/cancel`, { method: "POST" });
    route();
  });
  // A failed or cancelled submission runs again under its id, with more memory if asked.
  const rerunMemory = el("input", { id: "rerun-memory", type: "text", size: "8",
    placeholder: s.resources?.limits?.memory || s.resources?.requests?.memory || "memory" });
  const rerun = el("button", { type: "button", id: "rerun" }, "Rerun");
  const rerunError = el("span", { class: "error", id: "rerun-error", role: "alert" });
  rerun.addEventListener("click", async () => {
    const memory = rerunMemory.value.trim();
    if (!confirm(`Rerun ${s.name || s.id}${memory ? ` with ${memory}` : ""}?`)) return;
    const answer = await api(`/v1/submissions/${encodeURIComponent(id)}/rerun`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(memory ? { memory } : {}),
    });
    if (answer.ok) { route(); return; }
    const problem = await answer.json().catch(() => ({}));
    rerunError.textContent = problem.errors?.map((e) => `${e.field}: ${e.reason}`).join("; ")
      || problem.detail || "The rerun was refused.";
  });
  const rerunnable = ["failed", "cancelled"].includes(s.state);
  const rerunBar = el("div", { class: "filters", id: "rerun-bar" },
    el("label", { for: "rerun-memory" }, "Memory"), rerunMemory, rerun, rerunError);
  let pinned = true;
  log.addEventListener("scroll", () => { pinned = log.scrollTop + log.clientHeight >= log.scrollHeight - 4; });
  const search = logSearch(log);
  const download = el("button", { type: "button" }, "Download log");
  download.addEventListener("click", () => {
    const link = el("a", { href: URL.createObjectURL(new Blob([search.text()])), download: `${s.id}.log` });
    link.click();
  });
  const active = ["waiting", "queued", "pending", "running"].includes(s.state);
  const job = el("table", { id: "job" });
  const pods = el("table", { id: "pods" });
  const attempts = el("table", { id: "attempts" });
  const clusterEvents = el("table", { id: "cluster-events" });
  fillTable(attempts, ["POD", "EXIT CODE", "REASON", "MEMORY", "RETRY USED", "ENDED"],
    (s.attempts || []).map((a) => [a.pod, a.exit_code ?? "<none>", a.reason || "<none>",
      a.memory || "<none>", a.counted ? "yes" : (a.disrupted ? "no (disrupted)" : "no"),
      ago(a.finished_at)]),
    "No pod has ended yet.");
  view.replaceChildren(el("h2", {}, s.name || s.id),
    el("p", {}, "State: ", badge(s.state), s.message ? ` (${s.message})` : ""),
    ...(s.queue ? [el("p", { id: "queue" }, "Queue: ", queueSummary(s.queue))] : []),
    ...(s.cluster ? [el("p", { id: "cluster" }, `Cluster: ${s.cluster}`)] : []),
    ...(s.reruns ? [el("p", { id: "reruns" }, `Reruns: ${s.reruns} (this run's Job: ${s.job_name})`)] : []),
    ...(active ? [cancel] : []), ...(rerunnable ? [rerunBar] : []), download,
    el("h3", {}, "Changes"), timeline(s.id),
    el("h3", {}, "Job"), job, el("h3", {}, "Pods"), pods, el("h3", {}, "Attempts"), attempts,
    el("h3", {}, "Kubernetes events"), clusterEvents,
    el("h3", {}, "Log"), search.bar, log);
  clusterTables(s, job, pods, clusterEvents);
  const logs = await api(`/v1/submissions/${encodeURIComponent(id)}/logs?follow=true`);
  if (!logs.ok || !logs.body) return;
  const reader = logs.body.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    search.append(value);
    if (pinned && !search.active()) log.scrollTop = log.scrollHeight;
  }
}

/**
 * Find in a log while it is followed: every match highlighted, the current one scrolled into
 * view, Enter or "Next" for the next, Shift+Enter or "Previous" for the one before.
 */
function logSearch(log) {
  let text = "";
  let current = 0;
  const input = el("input", { id: "log-find", type: "search", placeholder: "Find in the log" });
  const label = el("label", { for: "log-find" }, "Find");
  const count = el("span", { id: "log-matches", "aria-live": "polite" });
  const previous = el("button", { type: "button", id: "log-previous" }, "Previous");
  const next = el("button", { type: "button", id: "log-next" }, "Next");
  const bar = el("div", { class: "filters", role: "search" }, label, input, previous, next, count);
  const render = () => {
    const query = input.value;
    if (!query) { log.textContent = text; count.textContent = ""; return; }
    const parts = text.split(query);
    const matches = parts.length - 1;
    if (matches) current = ((current % matches) + matches) % matches;
    log.replaceChildren(...parts.flatMap((part, index) => index === parts.length - 1 ? [part]
      : [part, el("mark", index === current ? { class: "current" } : {}, query)]));
    count.textContent = matches ? `${current + 1} of ${matches}` : "no match";
    log.querySelector("mark.current")?.scrollIntoView({ block: "nearest" });
  };
  const step = (by) => { current += by; render(); };
  input.addEventListener("input", () => { current = 0; render(); });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); step(event.shiftKey ? -1 : 1); }
  });
  previous.addEventListener("click", () => step(-1));
  next.addEventListener("click", () => step(1));
  return {
    bar,
    active: () => Boolean(input.value),
    append(value) {
      text += value;
      if (input.value) render(); else log.append(value);
    },
    text: () => text,
  };
}

/** A table with kubectl's columns, or a line saying there is nothing (yet). */
function fillTable(table, headers, rows, none) {
  if (!rows.length) { table.replaceChildren(el("caption", {}, none)); return; }
  table.replaceChildren(el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rows.map((row) => el("tr", {},
      ...row.map((cell) => el("td", {}, cell instanceof Node ? cell : String(cell)))))));
}

/**
 * The submission's Jobs and pods as `kubectl get jobs` and `kubectl get pods` show them, and
 * the events Kubernetes recorded about them.
 */
async function clusterTables(s, job, pods, events) {
  const selector = encodeURIComponent(`submission-helper.io/submission-id=${s.id}`);
  const jobs = await api(`/v1/jobs?label_selector=${selector}`);
  const jobRows = jobs.ok ? (await jobs.json()).items : [];
  fillTable(job, ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"],
    jobRows.map((j) => [j.name, j.status, j.completions, j.duration, j.age]),
    jobs.ok ? "No Job in the cluster now." : "The cluster cannot be asked now.");
  const answer = await api(`/v1/submissions/${encodeURIComponent(s.id)}/pods`);
  const podRows = answer.ok ? (await answer.json()).items : [];
  fillTable(pods, ["NAME", "READY", "STATUS", "RESTARTS", "NODE"],
    podRows.map((p) => [p.name, p.ready, p.status, p.restarts, p.node || "<none>"]),
    answer.ok ? "No pod in the cluster now." : "The cluster cannot be asked now.");
  // What Kubernetes recorded about its Jobs and pods, as `kubectl describe` lists it.
  const recorded = await api(`/v1/submissions/${encodeURIComponent(s.id)}/cluster-events`);
  const eventRows = recorded.ok ? (await recorded.json()).items : [];
  fillTable(events, ["TYPE", "REASON", "OBJECT", "AGE", "FROM", "MESSAGE"],
    eventRows.map((e) => [e.type, e.reason, e.object, ago(e.last_seen),
      e.count > 1 ? `${e.from} (×${e.count})` : e.from, e.message]),
    recorded.ok ? "Kubernetes has recorded nothing about it (events last an hour)." : "The cluster cannot be asked now.");
}

const FIELDS = [["name", "Name"], ["image", "Image"], ["command", "Command"],
  ["volume_claim", "Claim"], ["mount_path", "Mount path"], ["env", "Env (K=V, one a line)"],
  ["labels", "Labels (k=v, one a line)"]];

function pairs(text) {
  const map = {};
  for (const line of text.split("\n").map((l) => l.trim()).filter(Boolean)) {
    const at = line.indexOf("=");
    map[at < 0 ? line : line.slice(0, at)] = at < 0 ? "" : line.slice(at + 1);
  }
  return map;
}

/** The submit form; the server's refusals are shown beside the field they are about. */
function submitForm() {
  const form = el("form", { class: "submit", id: "submit" });
  for (const [field, label] of FIELDS) {
    const input = field === "env" || field === "labels"
      ? el("textarea", { id: `s-${field}`, rows: "2" }) : el("input", { id: `s-${field}` });
    input.setAttribute("aria-describedby", `e-${field}`);
    form.append(el("label", { for: `s-${field}` }, label, input,
      el("span", { class: "error", id: `e-${field}` })));
  }
  form.append(el("button", { type: "submit" }, "Submit"), el("p", { class: "error", id: "e-form", role: "alert" }));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const node of form.querySelectorAll(".error")) node.textContent = "";
    const body = {};
    for (const [field] of FIELDS) {
      const value = document.getElementById(`s-${field}`).value;
      if (!value) continue;
      body[field] = field === "env" || field === "labels" ? pairs(value) : value;
    }
    const answer = await api("/v1/submissions", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    if (answer.ok) { form.reset(); return; }
    const problem = await answer.json().catch(() => ({}));
    for (const error of problem.errors || []) {
      const field = FIELDS.find(([name]) => error.field === name || error.field.startsWith(`${name}.`));
      const target = document.getElementById(field ? `e-${field[0]}` : "e-form");
      target.textContent = `${target.textContent} ${error.reason}`.trim();
    }
    if (!problem.errors?.length) document.getElementById("e-form").textContent = problem.detail || answer.statusText;
  });
  return form;
}

function route() {
  timelineEvents?.abort();
  if (!token()) { showSignin(); return; }
  document.getElementById("signin").hidden = true;
  document.getElementById("signout").hidden = false;
  const match = location.hash.match(/^#\/submissions\/([^/]+)$/);
  if (match) detailView(match[1]);
  else if (location.hash.startsWith("#/campaigns")) campaignsView({ api, el, follow, view });
  else listView();
}

window.addEventListener("hashchange", route);
route();
