// What every Switchboard tab shares: signing in (Teams SSO, or local mode's dev sign-in),
// the JSON API with refusals shown as a sentence, and Teams' theme.
const TEAMS_TIMEOUT_MS = 5000;
const DEV_USER = "switchboard.dev-user";
const TEAMS_JS = "/tabs/static/vendor/MicrosoftTeams.min.js";

export const mode = document.body.dataset.mode; // "teams" | "local"
let localUser = null;

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function $(selector) {
  return document.querySelector(selector);
}

/** An element with text (never markup) and attributes. */
export function el(tag, text, attributes = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

export function notice(text) {
  const box = $("#notice");
  box.textContent = text || "";
  box.hidden = !text;
}

function applyTheme(theme) {
  // Teams says "default", "dark" or "contrast"; outside Teams the browser's preference holds.
  document.documentElement.dataset.theme =
    ["default", "dark", "contrast"].includes(theme) ? theme : "auto";
}

function withTimeout(promise, ms) {
  return Promise.race([promise, new Promise((_, reject) =>
    setTimeout(() => reject(new Error("timeout")), ms))]);
}

function loadTeamsJs() {
  // Loaded only in Teams mode: the client asks Microsoft's CDN for its list of host origins
  // as it loads (the page's Content-Security-Policy keeps it on its built-in list).
  return new Promise((resolve, reject) => {
    const script = el("script", null, {src: TEAMS_JS});
    script.addEventListener("load", resolve);
    script.addEventListener("error", reject);
    document.head.append(script);
  });
}

async function teamsSignIn() {
  let teams;
  try {
    await loadTeamsJs();
    teams = window.microsoftTeams;
    await withTimeout(teams.app.initialize(), TEAMS_TIMEOUT_MS);
  } catch {
    throw new ApiError(401, "Open this page in Microsoft Teams: Teams signs you in.");
  }
  const context = await teams.app.getContext();
  applyTheme(context.app && context.app.theme);
  teams.app.registerOnThemeChangeHandler(applyTheme);
  teams.app.notifySuccess();
}

async function devSignIn() {
  localUser = sessionStorage.getItem(DEV_USER);
  if (localUser) return;
  const form = $("#dev-signin");
  const select = $("#dev-member");
  const reply = await fetch("/tabs/api/local/members", {headers: {Accept: "application/json"}});
  const {members} = await reply.json();
  select.replaceChildren(...members.map((m) => el("option", m, {value: m})));
  form.hidden = false;
  select.focus();
  await new Promise((resolve) => form.addEventListener("submit", (event) => {
    event.preventDefault();
    resolve();
  }, {once: true}));
  localUser = select.value;
  sessionStorage.setItem(DEV_USER, localUser);
  form.hidden = true;
}

/** Sign in; returns when the API may be called. */
export async function signIn() {
  if (mode === "local") {
    applyTheme("auto");
    await devSignIn();
    const change = $("#switch-user");
    if (change) {
      change.hidden = false;
      change.addEventListener("click", () => {
        sessionStorage.removeItem(DEV_USER);
        location.reload();
      });
    }
  } else {
    await teamsSignIn();
  }
}

/** The Authorization header for a tab endpoint (a fresh Teams token, or the dev sign-in). */
export async function authorization() {
  if (mode === "local") return `Local ${localUser}`;
  try {
    const token = await window.microsoftTeams.authentication.getAuthToken();
    return `Bearer ${token}`;
  } catch {
    throw new ApiError(401, "Teams could not sign you in to Switchboard. Reload the tab; if " +
      "it stays, ask your administrator to check the app registration.");
  }
}

/** The JSON of a tab endpoint; an ApiError with the server's sentence when refused. */
export async function api(path, {method = "GET", body} = {}) {
  const headers = {Accept: "application/json", Authorization: await authorization()};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const reply = await fetch(path, {method, headers,
    body: body === undefined ? undefined : JSON.stringify(body)});
  const data = await reply.json().catch(() => ({}));
  if (!reply.ok) throw new ApiError(reply.status, data.error || `Not done (${reply.status}).`);
  return data;
}
