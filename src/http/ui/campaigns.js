// The campaigns view: the user's submissions grouped by a label's value, each group a stacked
// bar of its states kept live from /v1/events; a segment lists its submissions, and a group's
// failures are rerun, or its active submissions cancelled, with a confirmation.

const ORDER = ["waiting", "queued", "pending", "running", "succeeded", "failed", "cancelled"];
const ACTIVE = ["waiting", "queued", "pending", "running"];

/** The view, drawn into `view` with the page's helpers. */
export async function campaignsView({ api, el, follow, view }) {
  const shared = new URLSearchParams(location.hash.split("?")[1] || "");
  const key = el("input", { id: "c-label", value: shared.get("label") || "campaign" });
  const form = el("form", { class: "filters", id: "campaign-filters" },
    el("label", { for: "c-label" }, "Group by label"), key, el("button", { type: "submit" }, "Group"));
  const list = el("div", { id: "campaigns", "aria-live": "polite" });
  const problem = el("p", { class: "error", id: "campaign-error", role: "alert" });
  view.replaceChildren(el("h2", {}, "Campaigns"), form, problem, list);

  const act = async (path, body, question) => {
    if (!confirm(question)) return;
    const answer = await api(path, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    const said = await answer.json().catch(() => ({}));
    problem.textContent = answer.ok ? "" : said.detail || "The request was refused.";
    load();
  };
  const group = (label, campaign) => {
    const selector = `${label}=${campaign.value}`;
    const counts = ORDER.filter((state) => campaign.states[state]);
    const words = counts.map((state) => `${campaign.states[state]} ${state}`).join(", ");
    const segment = (state) => {
      const link = el("a", {
        class: `segment state-${state}`, "data-state": state,
        href: `#/?${new URLSearchParams({ label: selector, state })}`,
        title: `${campaign.states[state]} ${state}`,
        "aria-label": `${campaign.states[state]} ${state}: list them`,
      });
      // Through the CSS object model: the page's policy allows no inline style attribute.
      link.style.flexGrow = String(campaign.states[state]);
      return link;
    };
    const bar = el("div", { class: "bar", role: "group", "aria-label": `${campaign.value}: ${words}` },
      ...counts.map(segment));
    const failed = campaign.states.failed || 0;
    const active = ACTIVE.reduce((sum, state) => sum + (campaign.states[state] || 0), 0);
    const buttons = [];
    if (failed) {
      const rerun = el("button", { type: "button", class: "rerun-failed" }, `Rerun ${failed} failed`);
      rerun.addEventListener("click", () => act("/v1/submissions/rerun",
        { labels: { [label]: campaign.value }, state: ["failed"] },
        `Rerun the ${failed} failed submissions labelled ${selector}?`));
      buttons.push(rerun);
    }
    if (active) {
      const cancel = el("button", { type: "button", class: "cancel-group" }, `Cancel ${active} active`);
      cancel.addEventListener("click", () => act("/v1/submissions/cancel",
        { labels: { [label]: campaign.value } },
        `Cancel the ${active} active submissions labelled ${selector}?`));
      buttons.push(cancel);
    }
    return el("section", { class: "campaign", "data-value": campaign.value },
      el("h3", {}, el("a", { href: `#/?${new URLSearchParams({ label: selector })}` }, campaign.value),
        ` (${campaign.total})`),
      bar, el("p", { class: "counts" }, words), ...buttons);
  };
  const load = async () => {
    const answer = await api(`/v1/campaigns?${new URLSearchParams({ label: key.value })}`);
    if (!answer.ok) {
      const said = await answer.json().catch(() => ({}));
      problem.textContent = said.detail || "The campaigns cannot be read now.";
      return;
    }
    const campaigns = await answer.json();
    list.replaceChildren(...(campaigns.items.length
      ? campaigns.items.map((campaign) => group(campaigns.label, campaign))
      : [el("p", {}, `No submission of yours has the label ${campaigns.label}.`)]));
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    history.replaceState(null, "", `#/campaigns?${new URLSearchParams({ label: key.value })}`);
    load();
  });
  await load();
  follow(load);
}
