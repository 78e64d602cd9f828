// Checks Adaptive Cards with the official `adaptivecards` parser at schema 1.5.
// stdin: {"name": card, ...}; stdout: {"name": {events, fallbackEvents, unknownProperties,
// executeWithoutFallback}, ...}. Policy (what counts as a failure) lives in the Python test.
"use strict";

const AC = require("adaptivecards/dist/adaptivecards.js");

const VERSION = AC.Versions.v1_5;
const CHILDREN = { AdaptiveCard: ["body", "actions"], Container: ["items"], Column: ["items"],
  ColumnSet: ["columns"], ActionSet: ["actions"], "Action.ShowCard": ["card"] };

function eventName(code) {
  return AC.ValidationEvent[code] || String(code);
}

function describe(event) {
  const source = event.source ? { type: event.source.getJsonTypeName(), id: event.source.id } : null;
  return { phase: AC.ValidationPhase[event.phase], event: eventName(event.event),
    message: event.message, source };
}

function check(payload) {
  const card = new AC.AdaptiveCard();
  const context = new AC.SerializationContext(VERSION);
  card.parse(payload, context);
  const events = [];
  for (let i = 0; i < context.eventCount; i++) {
    events.push(describe(context.getEventAt(i)));
  }
  for (const event of card.validateProperties().validationEvents) {
    events.push(describe(event));
  }
  return events;
}

function schemaNames(instance) {
  const schema = instance.getSchema();
  const names = new Set();
  for (let i = 0; i < schema.getCount(); i++) {
    names.add(schema.getItemAt(i).name);
  }
  return names;
}

function instanceFor(kind, type) {
  switch (kind) {
    case "card": return new AC.AdaptiveCard();
    case "column": return new AC.Column();
    case "choice": return new AC.Choice();
    case "fact": return new AC.Fact();
    case "dataQuery": return new AC.ChoiceSetInputDataQuery();
    case "action": return AC.GlobalRegistry.actions.createInstance(type, VERSION);
    default: return AC.GlobalRegistry.elements.createInstance(type, VERSION);
  }
}

// Properties the parser would silently ignore (typos, wrong nesting).
function unknownProperties(node, kind, path, found) {
  if (!node || typeof node !== "object" || Array.isArray(node)) {
    return found;
  }
  const instance = instanceFor(kind, node.type);
  if (!instance) {
    found.push(`${path}: unknown ${kind} type ${node.type}`);
    return found;
  }
  const allowed = schemaNames(instance);
  for (const name of CHILDREN[node.type] || []) allowed.add(name);
  if (kind === "element" || kind === "action") allowed.add("fallback");
  for (const [key, value] of Object.entries(node)) {
    if (!allowed.has(key)) {
      found.push(`${path}: ${node.type || kind}.${key}`);
    }
    const childPath = `${path}/${key}`;
    const each = (items, childKind) => (Array.isArray(items) ? items : []).forEach(
      (item, i) => unknownProperties(item, childKind, `${childPath}[${i}]`, found));
    if (key === "body" || key === "items") each(value, "element");
    else if (key === "actions") each(value, "action");
    else if (key === "columns") each(value, "column");
    else if (key === "choices") each(value, "choice");
    else if (key === "facts") each(value, "fact");
    else if (key === "choices.data") unknownProperties(value, "dataQuery", childPath, found);
    else if (key === "card" && node.type === "Action.ShowCard") {
      unknownProperties(value, "card", childPath, found);
    }
    else if (key === "selectAction" || (key === "fallback" && kind === "action")) {
      unknownProperties(value, "action", childPath, found);
    } else if (key === "fallback" && typeof value === "object") {
      unknownProperties(value, "element", childPath, found);
    }
  }
  return found;
}

// The card an old client sees: every Action.Execute replaced by its fallback.
function withFallbacks(node, missing) {
  if (Array.isArray(node)) return node.map((item) => withFallbacks(item, missing));
  if (!node || typeof node !== "object") return node;
  if (node.type === "Action.Execute") {
    if (!node.fallback || typeof node.fallback !== "object") {
      missing.push(node.title || node.verb || "?");
      return node;
    }
    return withFallbacks(node.fallback, missing);
  }
  const copy = {};
  for (const [key, value] of Object.entries(node)) copy[key] = withFallbacks(value, missing);
  return copy;
}

function report(payload) {
  const missing = [];
  const legacy = withFallbacks(payload, missing);
  return {
    events: check(payload),
    fallbackEvents: check(legacy),
    unknownProperties: unknownProperties(payload, "card", "", []),
    executeWithoutFallback: missing,
  };
}

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const cards = JSON.parse(input);
  const result = {};
  for (const [name, payload] of Object.entries(cards)) {
    try {
      result[name] = report(payload);
    } catch (error) {
      result[name] = { crash: String(error && error.stack ? error.stack : error) };
    }
  }
  process.stdout.write(JSON.stringify(result));
});
