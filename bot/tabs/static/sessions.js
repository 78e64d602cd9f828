// My Sessions: the agent's sessions as a table (search, filters, sorting, paging) and the
// details of one, with the wrap-up form while it is open.
import {$, ApiError, api, el, notice, signIn} from "./tabs.js";

const state = {q: "", result: "", modality: "", service: "", period: "", sort: "time",
  dir: "desc", page: 0};
const TONES = {accepted: "good", declined: "attention", rona: "attention", missed: "attention",
  expired: "attention", failed: "attention", cancelled: "neutral", rescinded: "neutral"};
let selected = null;

function tone(entry) {
  return entry.live ? "warning" : (TONES[entry.state] || "neutral");
}

function fill(select, choices) {
  for (const {value, title} of choices) select.append(el("option", title, {value}));
}

function codes(entry) {
  return [entry.primary_code, entry.secondary_code].filter(Boolean).join(" · ");
}

function row(entry) {
  const tr = el("tr", null, {"data-id": entry.id,
    "aria-selected": String(entry.id === selected)});
  const open = el("button", entry.started, {type: "button", class: "open",
    "aria-label": `${entry.started}: open the details of this session`});
  open.addEventListener("click", () => showDetails(entry.id));
  const first = el("td");
  first.append(open);
  tr.append(first, el("td", entry.customer), el("td", entry.service),
    el("td", entry.modality_label),
    el("td", entry.state_label, {class: `state tone-${tone(entry)}`}),
    el("td", entry.waited), el("td", entry.talked), el("td", codes(entry), {class: "codes"}),
    el("td", entry.tags.join(", "), {class: "tags"}));
  return tr;
}

function query() {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(state)) if (value !== "") params.set(name, value);
  return params.toString();
}

async function load() {
  const data = await api(`/tabs/api/sessions?${query()}`);
  $("#rows").replaceChildren(...data.entries.map(row));
  $("#empty").hidden = data.entries.length > 0;
  const pages = Math.max(1, Math.ceil(data.total / data.size));
  $("#page-status").textContent =
    `Page ${data.page + 1} of ${pages} · ${data.total} session${data.total === 1 ? "" : "s"}` +
    (data.truncated ? " (the newest 500 that match)" : "");
  $("#previous").disabled = !data.has_previous;
  $("#next").disabled = !data.has_next;
  document.body.dataset.loads = String(Number(document.body.dataset.loads || 0) + 1);
  for (const th of document.querySelectorAll("th[data-sort]")) {
    if (th.dataset.sort === state.sort) {
      th.setAttribute("aria-sort", state.dir === "asc" ? "ascending" : "descending");
    } else {
      th.removeAttribute("aria-sort");
    }
  }
}

function facts(list, rows) {
  list.replaceChildren(...rows.flatMap(([name, value]) => [el("dt", name), el("dd", value)]));
}

function renderDetails(data) {
  const entry = data.entry;
  selected = entry.id;
  for (const tr of document.querySelectorAll("#rows tr")) {
    tr.setAttribute("aria-selected", String(tr.dataset.id === selected));
  }
  $("#details").hidden = false;
  $("#details").dataset.id = entry.id;
  $("#details-title").textContent = entry.service;
  const pill = $("#details-state");
  pill.textContent = entry.state_label;
  pill.className = `pill tone-${tone(entry)}`;
  facts($("#details-rows"), data.rows);
  const customer = $("#details-customer");
  facts(customer, data.details);
  customer.hidden = $("#details-customer-title").hidden = data.details.length === 0;
  const context = $("#details-context");
  context.hidden = !data.context_url;
  if (data.context_url) context.querySelector("a").href = data.context_url;
  const form = $("#wrapup");
  const wrapup = data.wrapup;
  form.hidden = !wrapup;
  $("#wrapup-message").textContent = "";
  if (wrapup) {
    for (const [id, values, chosen] of [["#primary-code", wrapup.primary_codes,
      wrapup.primary_code], ["#secondary-code", wrapup.secondary_codes,
      wrapup.secondary_code]]) {
      const select = $(id);
      select.replaceChildren(el("option", wrapup.codes_required && id === "#primary-code"
        ? "Choose a code" : "None", {value: ""}), ...values.map((v) => el("option", v, {value: v})));
      select.value = chosen || "";
      select.closest(".field").hidden = values.length === 0;
    }
    $("#primary-code").required = wrapup.codes_required;
    $("#tags").value = wrapup.tags.join(", ");
    $("#tag-suggestions").replaceChildren(...wrapup.suggestions.map((t) => el("option", null,
      {value: t})));
    form.querySelector("button[type=submit]").disabled = !wrapup.may_save;
  }
}

async function showDetails(id) {
  try {
    renderDetails(await api(`/tabs/api/sessions/${encodeURIComponent(id)}`));
    $("#details-title").focus();
    document.body.dataset.opened = id;
  } catch (error) {
    fail(error);
  }
}

async function save(event) {
  event.preventDefault();
  const message = $("#wrapup-message");
  const tags = $("#tags").value.split(",").map((t) => t.trim()).filter(Boolean);
  try {
    const data = await api(`/tabs/api/sessions/${encodeURIComponent(selected)}/wrapup`, {
      method: "POST", body: {primary_code: $("#primary-code").value || null,
        secondary_code: $("#secondary-code").value || null, tags}});
    renderDetails(data);
    await load();
    $("#details-title").focus();
  } catch (error) {
    if (!(error instanceof ApiError) || error.status === 401 || error.status === 403) {
      fail(error);
      return;
    }
    message.textContent = error.message;
    message.className = "message error";
  }
}

function fail(error) {
  notice(error instanceof ApiError ? error.message : "Something went wrong; reload the tab.");
  if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
    $("#main").hidden = true;
  }
}

async function start() {
  await signIn();
  const me = await api("/tabs/api/me");
  $("#who").textContent = `Signed in as ${me.name || me.upn}`;
  const choices = await api("/tabs/api/sessions/filters"); // 403 for someone who is no agent
  fill($("#result"), choices.results);
  fill($("#modality"), choices.modalities);
  fill($("#service"), choices.services);
  fill($("#period"), choices.periods);
  $("#main").hidden = false;
  $("#filters").addEventListener("submit", (event) => {
    event.preventDefault();
    for (const name of ["q", "result", "modality", "service", "period"]) {
      state[name] = $(`#${name}`).value.trim();
    }
    state.page = 0;
    load().catch(fail);
  });
  $("#filters").addEventListener("reset", () => {
    Object.assign(state, {q: "", result: "", modality: "", service: "", period: "", page: 0});
    setTimeout(() => load().catch(fail));
  });
  for (const th of document.querySelectorAll("th[data-sort]")) {
    th.querySelector("button").addEventListener("click", () => {
      const sort = th.dataset.sort;
      state.dir = state.sort === sort && state.dir === "desc" ? "asc" : "desc";
      state.sort = sort;
      state.page = 0;
      load().catch(fail);
    });
  }
  $("#previous").addEventListener("click", () => { state.page -= 1; load().catch(fail); });
  $("#next").addEventListener("click", () => { state.page += 1; load().catch(fail); });
  $("#close-details").addEventListener("click", () => {
    $("#details").hidden = true;
    selected = null;
    document.body.dataset.opened = "";
    $("#sessions-table").focus();
  });
  $("#wrapup").addEventListener("submit", save);
  await load();
  document.body.dataset.ready = "true";
}

start().catch(fail);
