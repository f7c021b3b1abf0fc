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
  const chartOf = el("select", { id: "chart-of" }, el("option", { value: "" }, "all campaigns"));
  const chart = el("figure", { id: "throughput" });
  view.replaceChildren(el("h2", {}, "Campaigns"), form, problem,
    el("h3", {}, "The last hour, per minute"),
    el("p", { class: "filters" }, el("label", { for: "chart-of" }, "Of"), chartOf), chart, list);

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
  const drawChart = async () => {
    const query = new URLSearchParams({ minutes: "60" });
    if (chartOf.value) query.set("label", `${key.value}=${chartOf.value}`);
    const answer = await api(`/v1/throughput?${query}`);
    if (answer.ok) chart.replaceChildren(...throughputChart(el, (await answer.json()).minutes));
  };
  chartOf.addEventListener("change", drawChart);
  const load = async () => {
    drawChart();
    const answer = await api(`/v1/campaigns?${new URLSearchParams({ label: key.value })}`);
    if (!answer.ok) {
      const said = await answer.json().catch(() => ({}));
      problem.textContent = said.detail || "The campaigns cannot be read now.";
      return;
    }
    const campaigns = await answer.json();
    const chosen = chartOf.value;
    chartOf.replaceChildren(el("option", { value: "" }, "all campaigns"),
      ...campaigns.items.map((c) => el("option", { value: c.value }, c.value)));
    chartOf.value = campaigns.items.some((c) => c.value === chosen) ? chosen : "";
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

const SERIES = [["started", "state-running"], ["succeeded", "state-succeeded"], ["failed", "state-failed"]];

/**
 * Starts and ends per minute as three lines drawn by uPlot (from its npm package, built into
 * the binary like the page's own files), in the colours of the state badges of the theme in
 * use, with a caption that says the totals in words and a legend whose lines repeat the words.
 */
function throughputChart(el, minutes) {
  const most = Math.max(1, ...minutes.flatMap((m) => SERIES.map(([name]) => m[name])));
  const totals = SERIES.map(([name]) => `${minutes.reduce((sum, m) => sum + m[name], 0)} ${name}`);
  const picture = el("div", {
    class: "chart", role: "img",
    "aria-label": `In the last hour: ${totals.join(", ")}; at most ${most} in a minute`,
  });
  const colour = (className) => {
    const probe = el("span", { class: className });
    document.body.append(probe);
    const { color } = getComputedStyle(probe);
    probe.remove();
    return color;
  };
  const ink = getComputedStyle(document.body).color;
  const axis = { stroke: ink, grid: { stroke: "rgba(128, 128, 128, 0.25)" }, ticks: { stroke: ink } };
  const data = [minutes.map((m) => Date.parse(m.at) / 1000),
    ...SERIES.map(([name]) => minutes.map((m) => m[name]))];
  const width = Math.max(240, Math.min(640, document.getElementById("view").clientWidth - 16));
  // Its legend is ours (words, below); its cursor shows the minute's values on hover.
  new uPlot({
    width, height: 160, legend: { show: false },
    scales: { y: { range: [0, most] } },
    // Counts: whole numbers on the y axis.
    axes: [axis, { ...axis, size: 40, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000] }],
    series: [{}, ...SERIES.map(([name, className]) => ({ label: name, stroke: colour(className), width: 2 }))],
  }, data, picture);
  const legend = el("figcaption", { class: "legend" },
    ...SERIES.map(([name, colour], i) => el("span", {},
      el("span", { class: `swatch ${colour}`, "aria-hidden": "true" }), totals[i])),
    ` (at most ${most} in a minute)`);
  return [picture, legend];
}
