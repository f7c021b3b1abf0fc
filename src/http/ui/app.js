// The submissions page: a token kept in this tab only, the list with filters, live states.
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
async function listView() {
  const filters = el("form", { class: "filters", id: "filters" },
    el("label", { for: "f-state" }, "State"), el("input", { id: "f-state" }),
    el("label", { for: "f-label" }, "Label k=v"), el("input", { id: "f-label" }),
    el("label", { for: "f-name" }, "Name"), el("input", { id: "f-name" }),
    el("button", { type: "submit" }, "Filter"));
  const body = el("tbody");
  const table = el("table", {}, el("thead", {}, el("tr", {},
    ...["Name", "State", "Message", "Created"].map((h) => el("th", {}, h)))), body);
  view.replaceChildren(filters, table);
  const load = async () => {
    const query = new URLSearchParams();
    for (const [key, id] of [["state", "f-state"], ["label", "f-label"], ["name", "f-name"]]) {
      const value = document.getElementById(id)?.value;
      if (value) query.set(key, value);
    }
    const answer = await api(`/v1/submissions?${query}`);
    if (!answer.ok) return;
    const page = await answer.json();
    body.replaceChildren(...page.items.map((s) => el("tr", {},
      el("td", {}, el("a", { href: `#/submissions/${s.id}` }, s.name || s.id)),
      el("td", {}, s.state), el("td", {}, s.message || ""), el("td", {}, s.created_at))));
  };
  filters.addEventListener("submit", (event) => { event.preventDefault(); load(); });
  await load();
  clearInterval(poll);
  poll = setInterval(load, 3000);
}

async function detailView(id) {
  clearInterval(poll);
  const answer = await api(`/v1/submissions/${encodeURIComponent(id)}`);
  if (!answer.ok) { view.replaceChildren(el("p", { class: "error" }, "Not found.")); return; }
  const s = await answer.json();
  const log = el("pre", { class: "log", id: "log" });
  view.replaceChildren(el("h2", {}, s.name || s.id), el("p", {}, `State: ${s.state}`), log);
  const logs = await api(`/v1/submissions/${encodeURIComponent(id)}/logs?follow=true`);
  if (!logs.ok || !logs.body) return;
  const reader = logs.body.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    log.append(value);
    log.scrollTop = log.scrollHeight;
  }
}

function route() {
  if (!token()) { showSignin(); return; }
  document.getElementById("signin").hidden = true;
  document.getElementById("signout").hidden = false;
  const match = location.hash.match(/^#\/submissions\/([^/]+)$/);
  if (match) detailView(match[1]); else listView();
}

window.addEventListener("hashchange", route);
route();
