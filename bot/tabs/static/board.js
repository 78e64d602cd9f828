// The supervisor board: each supervised service's queue, agents, live sessions and today's
// figures (charts drawn here as SVG, each with its numbers as a table), kept live by the
// board's event stream; and the supervisor's actions on a task or an agent.
import {$, ApiError, api, authorization, el, notice, signIn} from "./tabs.js";

const BOARD = "/api/board/v1";
const SVG = "http://www.w3.org/2000/svg";
const RESULTS = [["answered", "Answered"], ["cancelled", "Cancelled"], ["expired", "Expired"],
  ["waiting", "Still waiting"]];
const WAITS = [["answered", "Answered"], ["unanswered", "Cancelled or expired"]];
const MODALITIES = {im: "Chat", email: "Email", external: "External"};
const STATES = {unregistered: "Not registered", off_duty: "Off duty",
  not_available: "Not available", rona: "RONA", ringing: "Being offered", busy: "Busy",
  acw: "After-call work", available: "Available"};
const TONES = {available: "good", rona: "attention", busy: "warning", ringing: "warning",
  acw: "warning"};
const PHASES = {ringing: "Being offered", connected: "Connected", acw: "After-call work"};
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 30000;

let board = null; // the last board the stream sent
let receivedAt = 0; // performance.now() when it came: times shown tick on from there
let dayStart = null; // the local midnight the stream asks figures from (null: the server's)

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** An id made of parts that may hold any character. */
function idFor(...parts) {
  return parts.map((p) => String(p).replace(/[^A-Za-z0-9_-]/g,
    (c) => `_${c.charCodeAt(0).toString(16)}`)).join("--");
}

function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (h) return `${h} h ${m} min`;
  if (m) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
  return `${s % 60} s`;
}

function percent(share) {
  return `${Math.round(share * 100)}%`;
}

/** A time that ticks on: `seconds` as the board said it, plus the time since. */
function ticking(seconds) {
  if (seconds === null || seconds === undefined) return el("span", "—");
  return el("span", duration(seconds), {"data-seconds": String(seconds)});
}

function tick() {
  const since = (performance.now() - receivedAt) / 1000;
  for (const node of document.querySelectorAll("#services [data-seconds]")) {
    node.textContent = duration(Number(node.dataset.seconds) + since);
  }
}

function say(text, tone = "") {
  const said = $("#said");
  said.textContent = text;
  said.className = `said ${tone}`;
  document.body.dataset.said = String(Number(document.body.dataset.said || 0) + 1);
}

function setLive(text) {
  $("#live").textContent = text;
}

function hidden(text, attributes = {}) {
  return el("label", text, {class: "visually-hidden", ...attributes});
}

function table(caption, headings, rows, empty, id) {
  const node = el("table", null, {id});
  node.append(el("caption", caption));
  const head = el("tr");
  head.append(...headings.map((h) => el("th", h, {scope: "col"})));
  const thead = el("thead");
  thead.append(head);
  const body = el("tbody");
  if (rows.length) {
    body.append(...rows);
  } else {
    const tr = el("tr", null, {class: "empty"});
    tr.append(el("td", empty, {colspan: String(headings.length)}));
    body.append(tr);
  }
  node.append(thead, body);
  const scroll = el("div", null, {class: "scroll"});
  scroll.append(node);
  return scroll;
}

function cells(tr, ...values) {
  for (const value of values) {
    const td = el("td");
    if (value instanceof Node) td.append(value); else td.textContent = value;
    tr.append(td);
  }
  return tr;
}

function button(text, label, onClick, attributes = {}) {
  const node = el("button", text, {type: "button", "aria-label": label, ...attributes});
  node.addEventListener("click", onClick);
  return node;
}

// -- the service's live parts ------------------------------------------------------------

function names() {
  return new Map(board.services.map((s) => [s.id, s.name]));
}

function queueRow(service, entry) {
  const agents = new Map(service.agents.map((a) => [a.id, a.name]));
  const free = service.agents.filter((a) => a.state === "available");
  const tr = el("tr", null, {"data-task": entry.task_id});
  const state = entry.state === "ringing"
    ? `Being offered to ${entry.ringing.map((id) => agents.get(id) || id).join(", ")}`
    : "Queued";
  const selectId = idFor("offer-to", entry.task_id);
  const select = el("select", null, {id: selectId, class: "offer-to"});
  if (free.length) {
    select.append(...free.map((a) => el("option", a.name, {value: a.id})));
  } else {
    select.append(el("option", "No agent available", {value: ""}));
  }
  const offer = button("Offer", `Offer ${entry.customer} to the chosen agent`, () =>
    offerTask(entry, select), {id: idFor("offer", entry.task_id), class: "offer"});
  const noOffer = !free.length || entry.state !== "queued";
  select.disabled = noOffer;
  offer.disabled = noOffer;
  const withdraw = button("Withdraw", `Withdraw ${entry.customer}`, () =>
    withdrawTask(service, entry), {id: idFor("withdraw", entry.task_id), class: "withdraw"});
  const actions = el("div", null, {class: "row-actions"});
  actions.append(hidden(`Offer ${entry.customer} to`, {for: selectId}), select, offer, withdraw);
  const flow = entry.call_flow.map((id) => names().get(id) || id).join(" → ");
  return cells(tr, entry.customer, MODALITIES[entry.modality] || entry.modality,
    ticking(entry.waiting_seconds), String(entry.priority), flow, state, actions);
}

function agentRow(service, agent) {
  const tr = el("tr", null, {"data-agent": agent.id});
  const state = el("span", STATES[agent.state] || agent.state,
    {class: `tone-${TONES[agent.state] || "neutral"}`});
  const shown = el("span");
  shown.append(state);
  if (agent.paused) shown.append(" (switched this service off)");
  const actions = el("div", null, {class: "row-actions"});
  if (agent.state === "rona") {
    actions.append(button("Reset RONA", `Reset RONA: ${agent.name}`, () => act(
      `${BOARD}/services/${encodeURIComponent(service.id)}/agents/` +
      `${encodeURIComponent(agent.id)}/reset-rona`, undefined,
      `${agent.name}'s RONA is reset.`), {id: idFor("reset-rona", service.id, agent.id)}));
  }
  if (agent.state !== "off_duty" && agent.state !== "unregistered") {
    actions.append(button("Set off duty", `Set off duty: ${agent.name}`, () => act(
      `${BOARD}/services/${encodeURIComponent(service.id)}/agents/` +
      `${encodeURIComponent(agent.id)}/off-duty`, undefined,
      `${agent.name} is off duty now.`), {id: idFor("off-duty", service.id, agent.id)}));
  }
  return cells(tr, agent.name, shown, ticking(agent.in_state_seconds), String(agent.sessions),
    actions);
}

function sessionRow(session) {
  const tr = el("tr", null, {"data-session": session.id});
  const since = session.since === null ? null
    : (Date.parse(board.now) - Date.parse(session.since)) / 1000;
  return cells(tr, session.agent, session.customer || "—",
    MODALITIES[session.modality] || session.modality, PHASES[session.phase] || session.phase,
    ticking(since));
}

// -- today's figures ---------------------------------------------------------------------

function svg(tag, attributes = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function ticks(max) {
  const top = Math.max(1, max);
  const step = Math.max(1, Math.ceil(top / 4));
  const marks = [];
  for (let v = 0; v <= top; v += step) marks.push(v);
  if (marks[marks.length - 1] < top) marks.push(marks[marks.length - 1] + step);
  return marks;
}

/** Stacked bars: `groups` [{label, values: {key: n}}], `series` [[key, title]]; `marker`
 * {after: index, label}: a dashed line after that bar (the service level's threshold). */
function stackedBars(title, groups, series, marker) {
  const left = 36;
  const bottom = 28;
  const top = 22;
  const slot = groups.length > 12 ? 26 : 44;
  const width = left + groups.length * slot + 8;
  const height = 186;
  const plot = height - bottom - top;
  const totals = groups.map((g) => series.reduce((sum, [key]) => sum + (g.values[key] || 0), 0));
  const marks = ticks(Math.max(0, ...totals));
  const max = marks[marks.length - 1];
  const y = (v) => top + plot - (v / max) * plot;
  const chart = svg("svg", {viewBox: `0 0 ${width} ${height}`, width: String(width),
    height: String(height), role: "img", "aria-label": `${title}: chart; the numbers are in ` +
    "the table that follows", class: "chart"});
  for (const v of marks) {
    chart.append(svg("line", {x1: String(left), x2: String(width - 4), y1: String(y(v)),
      y2: String(y(v)), class: "grid"}));
    chart.append(svg("text", {x: String(left - 6), y: String(y(v) + 4), class: "axis",
      "text-anchor": "end"}, String(v)));
  }
  const every = Math.ceil(groups.length / 12);
  groups.forEach((group, i) => {
    const x = left + i * slot + slot * 0.15;
    let base = 0;
    for (const [key] of series) {
      const value = group.values[key] || 0;
      if (!value) continue;
      chart.append(svg("rect", {x: String(x), width: String(slot * 0.7),
        y: String(y(base + value)), height: String(y(base) - y(base + value)),
        class: `bar bar-${key}`}));
      base += value;
    }
    if (i % every === 0) {
      chart.append(svg("text", {x: String(x + slot * 0.35), y: String(height - bottom + 16),
        class: "axis", "text-anchor": "middle"}, group.label));
    }
  });
  if (marker) {
    const x = left + (marker.after + 1) * slot;
    chart.append(svg("line", {x1: String(x), x2: String(x), y1: String(top - 8),
      y2: String(height - bottom), class: "threshold"}));
    chart.append(svg("text", {x: String(x + 4), y: String(top - 10),
      class: "axis threshold-label"}, marker.label));
  }
  return chart;
}

function legend(series) {
  const list = el("ul", null, {class: "legend"});
  for (const [key, title] of series) {
    const item = el("li");
    item.append(el("span", null, {class: `swatch swatch-${key}`, "aria-hidden": "true"}), title);
    list.append(item);
  }
  return list;
}

function numbers(caption, headings, rows, id) {
  const details = el("details", null, {id});
  details.append(el("summary", `${caption}: the numbers`));
  const node = el("table");
  node.append(el("caption", caption, {class: "visually-hidden"}));
  const head = el("tr");
  head.append(...headings.map((h) => el("th", h, {scope: "col"})));
  const thead = el("thead");
  thead.append(head);
  const body = el("tbody");
  for (const row of rows) {
    const tr = el("tr");
    row.forEach((value, i) => tr.append(el(i === 0 ? "th" : "td", value,
      i === 0 ? {scope: "row"} : {})));
    body.append(tr);
  }
  node.append(thead, body);
  details.append(node);
  return details;
}

function chartFigure(key, title, chart, series, table) {
  const figure = el("figure", null, {class: "chart-box", "data-chart": key});
  figure.append(el("figcaption", title), chart, legend(series), table);
  return figure;
}

function hourLabel(iso) {
  const d = new Date(iso);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

function waitLabel(bucket, previous) {
  if (bucket.up_to_seconds === null) return `over ${duration(previous)}`;
  return `up to ${duration(bucket.up_to_seconds)}`;
}

function figuresPart(service) {
  const f = service.figures;
  const part = el("section", null, {class: "figures", "aria-labelledby":
    idFor("today", service.id)});
  part.append(el("h3", "Today", {id: idFor("today", service.id)}));
  if (!f) {
    part.append(el("p", "Not counted yet.", {class: "subtle"}));
    return part;
  }
  const threshold = duration(f.threshold_seconds);
  const decided = f.results.answered + f.results.cancelled + f.results.expired;
  const level = el("p", null, {class: "level"});
  if (f.service_level === null) {
    level.textContent = `Service level: nothing answered or ended yet today (threshold ${threshold}).`;
  } else {
    level.append(el("strong", `Service level ${percent(f.service_level)}`),
      `: ${f.answered_within} of ${decided} answered within ${threshold}.`);
  }
  const totals = el("p", RESULTS.map(([key, title]) => `${title} ${f.results[key]}`)
    .join(" · ") + (f.partial ? " (counted from the day's first 20,000 offers only)" : ""),
  {class: "subtle totals"});
  const charts = el("div", null, {class: "charts"});

  const hours = f.hours.map((h) => ({label: hourLabel(h.start), values: h}));
  charts.append(chartFigure("hours", "Tasks per hour by result",
    stackedBars("Tasks per hour by result", hours, RESULTS), RESULTS,
    numbers("Tasks per hour by result", ["Hour", ...RESULTS.map(([, t]) => t)],
      hours.map((h) => [h.label, ...RESULTS.map(([k]) => String(h.values[k]))]),
      idFor("hours-numbers", service.id))));

  let previous = 0;
  const waits = f.waits.map((w) => {
    const label = waitLabel(w, previous);
    previous = w.up_to_seconds ?? previous;
    return {label, short: w.up_to_seconds === null ? `>${previous}s` : `≤${w.up_to_seconds}s`,
      values: w, up_to: w.up_to_seconds};
  });
  const after = waits.findIndex((w) => w.up_to !== null && w.up_to >= f.threshold_seconds);
  charts.append(chartFigure("waits", "Wait before answer or end",
    stackedBars("Wait before answer or end", waits.map((w) => ({label: w.short,
      values: w.values})), WAITS,
    after >= 0 ? {after, label: `threshold ${threshold}`} : null), WAITS,
    numbers("Wait before answer or end", ["Waited", ...WAITS.map(([, t]) => t)],
      waits.map((w) => [w.label, ...WAITS.map(([k]) => String(w.values[k]))]),
      idFor("waits-numbers", service.id))));

  const later = f.results.answered - f.answered_within;
  const unanswered = f.results.cancelled + f.results.expired;
  const parts = [["within", `Answered within ${threshold}`, f.answered_within],
    ["later", "Answered later", later], ["unanswered", "Cancelled or expired", unanswered]];
  charts.append(chartFigure("level", `Service level (threshold ${threshold})`,
    levelBar(parts, decided), parts.map(([k, t]) => [k, t]),
    numbers(`Service level (threshold ${threshold})`, ["Tasks", "Count", "Share"],
      parts.map(([, t, n]) => [t, String(n), decided ? percent(n / decided) : "—"]),
      idFor("level-numbers", service.id))));
  part.append(level, totals, charts);
  return part;
}

function levelBar(parts, decided) {
  const width = 320;
  const chart = svg("svg", {viewBox: `0 0 ${width} 40`, width: String(width), height: "40",
    role: "img", class: "chart", "aria-label": "Service level: chart; the numbers are in the " +
    "table that follows"});
  chart.append(svg("rect", {x: "0", y: "4", width: String(width), height: "24",
    class: "level-track"}));
  let x = 0;
  for (const [key, , count] of parts) {
    if (!decided || !count) continue;
    const w = (count / decided) * width;
    chart.append(svg("rect", {x: String(x), y: "4", width: String(w), height: "24",
      class: `bar bar-${key}`}));
    x += w;
  }
  return chart;
}

// -- rendering ---------------------------------------------------------------------------

function serviceSection(service) {
  const headingId = idFor("service", service.id);
  const section = el("section", null, {class: "card service", "aria-labelledby": headingId,
    "data-service": service.id});
  section.append(el("h2", service.name, {id: headingId, tabindex: "-1"}));
  const p = service.picture;
  const summary = el("p", null, {class: "subtle picture"});
  summary.append(`${p.queue_length} waiting`);
  if (p.oldest_wait_seconds !== null) {
    summary.append(" · oldest ", ticking(p.oldest_wait_seconds));
  }
  summary.append(` · ${p.sessions_live} live · ${p.sessions_in_acw} in after-call work`);
  section.append(summary,
    table("Queue", ["Customer", "Type", "Waiting", "Priority", "Call flow", "State", "Actions"],
      service.queue.map((q) => queueRow(service, q)), "Nobody is waiting.",
      idFor("queue", service.id)),
    table("Agents", ["Agent", "State", "In state for", "Sessions", "Actions"],
      service.agents.map((a) => agentRow(service, a)), "No agents.",
      idFor("agents", service.id)),
    table("Live sessions", ["Agent", "Customer", "Type", "Phase", "For"],
      service.sessions.map(sessionRow), "No live sessions.", idFor("sessions", service.id)),
    figuresPart(service));
  return section;
}

/** What a new board must not lose: the focus, the choices in the selects, open tables. */
function kept() {
  const active = document.activeElement;
  const inside = active && $("#services").contains(active);
  return {
    focus: inside ? active.id : null,
    service: inside ? active.closest("[data-service]")?.dataset.service : null,
    values: [...document.querySelectorAll("#services select")].map((s) => [s.id, s.value]),
    open: [...document.querySelectorAll("#services details[open]")].map((d) => d.id),
  };
}

function restore({focus, service, values, open}) {
  for (const [id, value] of values) {
    const select = document.getElementById(id);
    if (select && [...select.options].some((o) => o.value === value)) select.value = value;
  }
  for (const id of open) {
    const details = document.getElementById(id);
    if (details) details.open = true;
  }
  if (!focus && !service) return;
  const again = (focus && document.getElementById(focus)) ||
    (service && document.getElementById(idFor("service", service)));
  if (again) again.focus();
}

let pending = null; // a board that came while a select was in use (shown when it is left)

function render(data) {
  const active = document.activeElement;
  if (active && active.tagName === "SELECT" && $("#services").contains(active)) {
    // Replacing an open select would close it under the supervisor's hand.
    if (!pending) {
      active.addEventListener("blur", () => {
        const waiting = pending;
        pending = null;
        if (waiting) setTimeout(() => render(waiting));
      }, {once: true});
    }
    pending = data;
    document.body.dataset.held = "true";
    return;
  }
  delete document.body.dataset.held;
  const before = kept();
  board = data;
  receivedAt = performance.now();
  $("#services").replaceChildren(...data.services.map(serviceSection));
  restore(before);
  $("#main").hidden = false;
  document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
  document.body.dataset.ready = "true";
}

// -- actions -----------------------------------------------------------------------------

async function act(path, body, done) {
  try {
    await api(path, {method: "POST", body});
    say(done, "good");
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      refuse(error);
      return;
    }
    say(`Not done: ${error instanceof ApiError ? error.message : "Switchboard did not answer."}`,
      "error");
  }
}

async function offerTask(entry, select) {
  const agent = select.value;
  const name = select.selectedOptions[0] ? select.selectedOptions[0].textContent : agent;
  if (!agent) return;
  await act(`${BOARD}/tasks/${encodeURIComponent(entry.task_id)}/offer`, {agent_id: agent},
    `${entry.customer} is offered to ${name}.`);
}

/** Ask in the page's dialog; the focus goes back to `from` (by id: the board may have been
 * drawn anew meanwhile). */
function confirmed(text, from) {
  const dialog = $("#confirm");
  $("#confirm-text").textContent = text;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      const back = document.getElementById(from);
      if (back) back.focus();
      resolve(dialog.returnValue === "yes");
    }, {once: true});
    dialog.showModal();
    $("#confirm-no").focus();
  });
}

async function withdrawTask(service, entry) {
  if (!await confirmed(`Withdraw ${entry.customer}'s task from ${service.name}? Its offers ` +
    "end and nobody is offered it again.", idFor("withdraw", entry.task_id))) {
    say(`${entry.customer}'s task stays queued.`);
    return;
  }
  await act(`${BOARD}/tasks/${encodeURIComponent(entry.task_id)}/withdraw`, undefined,
    `${entry.customer}'s task is withdrawn.`);
}

// -- the stream --------------------------------------------------------------------------

function refuse(error) {
  notice(error instanceof ApiError ? error.message : "Something went wrong; reload the tab.");
  $("#main").hidden = true;
  $("#services").replaceChildren();
  setLive("");
  document.body.dataset.refused = String(error.status || "");
}

function pad(n) {
  return String(n).padStart(2, "0");
}

/** Midnight (here) of the day `iso` falls in, as an ISO date-time with its offset. */
function localMidnight(iso) {
  const now = new Date(iso);
  const day = new Date(now.getFullYear(), now.getMonth(), now.getDate());
  const offset = -day.getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  return `${day.getFullYear()}-${pad(day.getMonth() + 1)}-${pad(day.getDate())}T00:00:00` +
    `${sign}${pad(Math.floor(Math.abs(offset) / 60))}:${pad(Math.abs(offset) % 60)}`;
}

function parseEvent(block) {
  const found = {event: "message", data: []};
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") found.event = value;
    else if (field === "data") found.data.push(value);
  }
  return {event: found.event, data: found.data.join("\n")};
}

/** One connection: the board as it changes, until it ends ("lost") or the day turns
 * ("again"); a refusal as an ApiError. */
async function follow(onBoard) {
  const query = dayStart ? `?${new URLSearchParams({day_start: dayStart})}` : "";
  const reply = await fetch(`${BOARD}/stream${query}`, {cache: "no-store",
    headers: {Accept: "text/event-stream", Authorization: await authorization()}});
  if (!reply.ok) {
    const data = await reply.json().catch(() => ({}));
    throw new ApiError(reply.status, data.error || `Not shown (${reply.status}).`);
  }
  setLive("Live");
  const reader = reply.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const {value, done} = await reader.read();
      if (done) return "lost";
      buffer = (buffer + value).replace(/\r\n/g, "\n");
      for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
        const message = parseEvent(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (message.event !== "board" || !message.data) continue;
        const data = JSON.parse(message.data);
        const midnight = localMidnight(data.now);
        if (Date.parse(midnight) !== Date.parse(data.day_start)) {
          dayStart = midnight; // today here, not in UTC: ask again
          return "again";
        }
        onBoard(data);
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

async function live() {
  let wait = RETRY_FIRST_MS;
  for (;;) {
    let ended;
    try {
      ended = await follow((data) => {
        wait = RETRY_FIRST_MS;
        render(data);
      });
    } catch (error) {
      if (error instanceof ApiError && [400, 401, 403, 404].includes(error.status)) {
        refuse(error);
        return;
      }
      ended = "lost";
    }
    if (ended === "again") continue;
    setLive(`Not live: connecting again in ${Math.round(wait / 1000)} s…`);
    await sleep(wait + Math.random() * 250);
    wait = Math.min(wait * 2, RETRY_MAX_MS);
  }
}

async function start() {
  await signIn();
  const me = await api("/tabs/api/me");
  $("#who").textContent = `Signed in as ${me.name || me.upn}`;
  setLive("Connecting…");
  setInterval(tick, 1000);
  await live();
}

start().catch(refuse);
