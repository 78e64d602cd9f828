/*! Switchboard website chat (Interact) — embeddable widget.
 *
 *   <script src="https://<host>/interact/widget.js" data-service="sales"
 *           data-label="Chat with Sales" data-service-name="Sales"></script>
 *
 * Renders a launcher button where the script tag is; each tag is its own widget. The API
 * lives at the origin the script was loaded from. Everything from the server or the visitor
 * is put on the page as text (textContent), never as HTML. Plain ES2019, no dependencies.
 */
(function () {
  "use strict";

  var P = "sbw-"; // the class/id prefix: nothing on the host page should use it
  var API = "/api/interact/v1";
  var MAX_STORED_EVENTS = 200;
  var MAX_BACKOFF_MS = 30000;

  var script = document.currentScript ||
    document.querySelector('script[src*="/interact/widget.js"]:not([data-' + P + 'ready])');
  if (!script || script.hasAttribute("data-" + P + "ready")) return;
  script.setAttribute("data-" + P + "ready", "");

  var service = script.getAttribute("data-service") || "";
  if (!service) {
    if (window.console) console.warn("Switchboard widget: add data-service=\"...\" to the script tag.");
    return;
  }
  var label = script.getAttribute("data-label") || "Chat with us";
  var serviceName = script.getAttribute("data-service-name") || "";
  var origin = new URL(script.src, location.href).origin;
  var apiBase = origin + API;
  var wsBase = origin.replace(/^http/, "ws") + API;
  var storeKey = P + "chat:" + origin + ":" + service;
  var uid = P + (window.__sbwCount = (window.__sbwCount || 0) + 1);

  // -- tiny DOM helpers (text only) ------------------------------------------------------------

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = attrs[name];
      if (value === true) node.setAttribute(name, "");
      else if (value !== false && value != null) node.setAttribute(name, String(value));
    });
    (children || []).forEach(function (child) {
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function cls(name) { return P + name; }

  function injectStyle() {
    if (document.getElementById(P + "style")) return;
    var css = [
      ".P-root{display:inline-block;font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif,'Apple Color Emoji','Segoe UI Emoji','Noto Color Emoji';color:#1c1c1c}",
      ".P-root *{box-sizing:border-box;font:inherit}",
      ".P-root [hidden]{display:none!important}",
      ".P-root :focus-visible{outline:3px solid #0b57d0;outline-offset:2px}",
      ".P-root button{cursor:pointer;border-radius:6px;border:1px solid #1b4f9c;padding:.45em .9em;background:#fff;color:#1b4f9c}",
      ".P-root button:disabled{cursor:default;opacity:.55}",
      ".P-root .P-primary,.P-root .P-launcher{background:#1b4f9c;color:#fff}",
      ".P-launcher{font-weight:600;padding:.6em 1.1em!important;border-radius:999px!important}",
      ".P-badge{display:inline-block;margin-left:.5em;padding:0 .45em;border-radius:999px;background:#fff;color:#1b4f9c;font-size:.8em}",
      ".P-dialog{position:fixed;right:1rem;bottom:1rem;z-index:2147483000;width:min(24rem,calc(100vw - 2rem));height:min(34rem,calc(100vh - 2rem));display:flex;flex-direction:column;background:#fff;border:1px solid #c8ccd4;border-radius:12px;box-shadow:0 8px 28px rgba(0,0,0,.25);overflow:hidden;text-align:left}",
      ".P-header{display:flex;align-items:center;justify-content:space-between;gap:.5em;padding:.6em .8em;background:#1b4f9c;color:#fff}",
      ".P-header :focus-visible{outline-color:#fff}",
      ".P-title{margin:0;font-size:1.05em!important;font-weight:600!important}",
      ".P-root .P-close{background:transparent;color:#fff;border-color:transparent;font-size:1.3em;line-height:1;padding:.1em .4em}",
      ".P-status{margin:0;padding:.4em .8em;min-height:2.2em;background:#eef3fb;color:#1c1c1c;font-size:.9em}",
      ".P-status:empty{padding:0;min-height:0}",
      ".P-start{padding:.8em;display:flex;flex-direction:column;gap:.35em;overflow:auto}",
      ".P-start p{margin:0 0 .4em}",
      ".P-root label{font-weight:600;font-size:.9em}",
      ".P-root input,.P-root textarea{width:100%;padding:.45em .55em;border:1px solid #8a8f98;border-radius:6px;background:#fff;color:#1c1c1c}",
      ".P-root textarea{resize:vertical}",
      ".P-start button{margin-top:.5em;align-self:flex-start}",
      ".P-error{margin:0;color:#a4000f;font-size:.9em}",
      ".P-error:empty{display:none}",
      ".P-chat{flex:1;display:flex;flex-direction:column;min-height:0}",
      ".P-log{flex:1;overflow-y:auto;padding:.6em .8em;display:flex;flex-direction:column;gap:.5em}",
      ".P-row{max-width:85%;padding:.4em .65em;border-radius:10px;background:#f1f2f4;white-space:pre-wrap;overflow-wrap:anywhere}",
      ".P-from-customer{align-self:flex-end;background:#dbe7fb}",
      ".P-from-agent{align-self:flex-start}",
      ".P-from-system,.P-note{align-self:center;background:none;color:#4a4f57;font-size:.88em;text-align:center}",
      ".P-meta{display:block;font-size:.78em;color:#4a4f57}",
      ".P-who{font-weight:600;margin-right:.5em}",
      ".P-compose{display:flex;gap:.4em;align-items:flex-end;padding:.5em .8em;border-top:1px solid #e1e3e8}",
      ".P-compose textarea{flex:1;min-height:2.6em}",
      ".P-actions{display:flex;justify-content:space-between;gap:.4em;padding:0 .8em .6em}",
      ".P-sr{position:absolute!important;width:1px;height:1px;margin:-1px;padding:0;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0}"
    ].join("\n").replace(/\.P-/g, "." + P);
    document.head.appendChild(el("style", { id: P + "style" }, [css]));
  }

  // -- state kept across page reloads (this tab only) ------------------------------------------

  function load() {
    try {
      var saved = JSON.parse(sessionStorage.getItem(storeKey) || "null");
      return saved && saved.chatId && saved.token ? saved : null;
    } catch (e) { return null; }
  }

  function save() {
    try {
      if (chat) sessionStorage.setItem(storeKey, JSON.stringify(chat));
      else sessionStorage.removeItem(storeKey);
    } catch (e) { /* storage full or disabled: the chat still works until a reload */ }
  }

  var chat = load(); // {chatId, token, seq, ended, open, agent, events: [...]}
  var socket = null;
  var retries = 0;
  var retryTimer = null;
  var phaseText = "";
  var connText = "";

  // -- the widget's DOM ------------------------------------------------------------------------

  injectStyle();
  var ids = { dialog: uid + "-dialog", title: uid + "-title", name: uid + "-name",
              email: uid + "-email", first: uid + "-first", message: uid + "-message" };

  var badge = el("span", { "class": cls("badge"), hidden: true });
  var launcher = el("button", { type: "button", "class": cls("launcher"), "aria-haspopup": "dialog",
                                "aria-expanded": "false", "aria-controls": ids.dialog },
                    [label, badge]);
  var closeButton = el("button", { type: "button", "class": cls("close"), "aria-label": "Close the chat window" },
                       [el("span", { "aria-hidden": "true" }, ["\u00d7"])]);
  var status = el("p", { "class": cls("status"), role: "status", "aria-live": "polite" });

  var nameInput = el("input", { id: ids.name, type: "text", autocomplete: "name", maxlength: "320" });
  var emailInput = el("input", { id: ids.email, type: "email", autocomplete: "email", maxlength: "320" });
  var firstInput = el("textarea", { id: ids.first, rows: "3", maxlength: "4000" });
  var startButton = el("button", { type: "submit", "class": cls("primary") }, ["Start chat"]);
  var startError = el("p", { "class": cls("error"), role: "alert" });
  var startForm = el("form", { "class": cls("start") }, [
    el("p", {}, ["Tell us who you are if you like, then start the chat."]),
    el("label", { "for": ids.name }, ["Name (optional)"]), nameInput,
    el("label", { "for": ids.email }, ["Email (optional)"]), emailInput,
    el("label", { "for": ids.first }, ["How can we help? (optional)"]), firstInput,
    startButton, startError
  ]);

  var log = el("div", { "class": cls("log"), role: "log", "aria-live": "polite",
                        "aria-label": "Chat messages", tabindex: "0" });
  var messageInput = el("textarea", { id: ids.message, rows: "2", maxlength: "4000",
                                      placeholder: "Type a message" });
  var sendButton = el("button", { type: "submit", "class": cls("primary") }, ["Send"]);
  var compose = el("form", { "class": cls("compose") }, [
    el("label", { "for": ids.message, "class": cls("sr") }, ["Your message"]),
    messageInput, sendButton
  ]);
  var chatError = el("p", { "class": cls("error"), role: "alert" });
  var endButton = el("button", { type: "button" }, ["End chat"]);
  var newButton = el("button", { type: "button", hidden: true }, ["Start a new chat"]);
  var chatView = el("div", { "class": cls("chat"), hidden: true }, [
    log, compose, el("div", { "class": cls("actions") }, [chatError, endButton, newButton])
  ]);

  var dialog = el("div", { id: ids.dialog, "class": cls("dialog"), role: "dialog",
                           "aria-modal": "false", "aria-labelledby": ids.title, hidden: true }, [
    el("div", { "class": cls("header") }, [el("h2", { id: ids.title, "class": cls("title") }, [label]),
                                           closeButton]),
    status, startForm, chatView
  ]);
  var root = el("div", { "class": cls("root") }, [launcher, dialog]);

  if (script.parentNode && script.parentNode !== document.head) {
    script.parentNode.insertBefore(root, script.nextSibling);
  } else if (document.body) {
    document.body.appendChild(root);
  } else {
    document.addEventListener("DOMContentLoaded", function () { document.body.appendChild(root); });
  }

  // -- opening and closing ---------------------------------------------------------------------

  function isOpen() { return !dialog.hidden; }

  function setUnread(unread) { // text only while shown, so the launcher's name stays clean
    badge.hidden = !unread;
    badge.textContent = unread ? "new" : "";
  }

  function open(focus) {
    dialog.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    setUnread(false);
    if (chat) { chat.open = true; save(); }
    if (focus !== false) focusFirst();
    log.scrollTop = log.scrollHeight;
  }

  function close() {
    dialog.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    if (chat) { chat.open = false; save(); }
    launcher.focus();
  }

  function focusFirst() {
    if (!chat) nameInput.focus();
    else if (!chat.ended) messageInput.focus();
    else newButton.focus();
  }

  launcher.addEventListener("click", function () { if (isOpen()) close(); else open(); });
  closeButton.addEventListener("click", close);
  dialog.addEventListener("keydown", function (event) {
    if (event.key === "Escape") { event.preventDefault(); close(); }
  });

  // -- status line and the message log ---------------------------------------------------------

  function showStatus() { status.textContent = connText || phaseText; }
  function setPhase(text) { phaseText = text; showStatus(); }
  function setConn(text) { connText = text; showStatus(); }

  function timeOf(at) {
    var date = new Date(at);
    if (!at || isNaN(date.getTime())) return null;
    return el("time", { datetime: at }, [date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })]);
  }

  function addRow(from, who, text, at) {
    var meta = el("span", { "class": cls("meta") });
    if (who) meta.appendChild(el("span", { "class": cls("who") }, [who]));
    var time = timeOf(at);
    if (time) meta.appendChild(time);
    var body = el("span", { "class": cls("text") }, [text]);
    var row = el("div", { "class": cls("row") + " " + cls("from-" + from) },
                 from === "system" ? [body, " ", meta] : [meta, body]);
    log.appendChild(row);
    log.scrollTop = log.scrollHeight;
    if (!isOpen() && from !== "customer") setUnread(true);
  }

  function agentName() { return chat && chat.agent ? chat.agent : "Agent"; }

  function render(event) {
    switch (event.type) {
      case "message":
        if (event.from === "customer") addRow("customer", "You", event.text, event.at);
        else if (event.from === "agent") addRow("agent", agentName(), event.text, event.at);
        else addRow("system", "", event.text, event.at);
        break;
      case "queued":
        setPhase("Waiting for an agent\u2026");
        if (event.transfer) addRow("system", "", "Transferring you to " + event.transfer + "\u2026", event.at);
        break;
      case "accepted":
        chat.agent = event.agent || "An agent";
        setPhase("You are chatting with " + chat.agent + ".");
        addRow("system", "", chat.agent + (serviceName ? " from " + serviceName : "") + " joined", event.at);
        break;
      case "ended":
        addRow("system", "", event.by === "customer" ? "You ended the chat."
          : event.by === "agent" ? agentName() + " ended the chat." : "The chat has ended.", event.at);
        finish();
        break;
      case "expired":
        addRow("system", "", event.message || "Sorry, no one could take your request in time.", event.at);
        finish();
        break;
      default:
        break; // a newer server's event: ignore what we do not know
    }
  }

  function handle(event) {
    if (!chat || !event || typeof event !== "object") return;
    if (typeof event.position === "number") { // a queue-position snapshot, not a new row
      if (!chat.ended && event.position > 0) setPhase("You are number " + event.position + " in the queue");
      return;
    }
    if (typeof event.seq !== "number" || event.seq <= chat.seq) return; // already shown
    chat.seq = event.seq;
    chat.events.push(event);
    if (chat.events.length > MAX_STORED_EVENTS) chat.events.splice(0, chat.events.length - MAX_STORED_EVENTS);
    render(event);
    save();
  }

  // -- the WebSocket, with reconnects -----------------------------------------------------------

  function connect() {
    if (!chat || chat.ended || socket) return;
    clearTimeout(retryTimer);
    retryTimer = null;
    var url = wsBase + "/chats/" + encodeURIComponent(chat.chatId) + "/ws?token=" +
      encodeURIComponent(chat.token) + "&after=" + chat.seq;
    var ws = new WebSocket(url);
    socket = ws;
    ws.onopen = function () { retries = 0; setConn(""); };
    ws.onmessage = function (message) {
      if (socket !== ws) return; // a socket we already let go of
      var event;
      try { event = JSON.parse(message.data); } catch (e) { return; }
      handle(event);
    };
    ws.onclose = function () {
      if (socket !== ws) return;
      socket = null;
      if (chat && !chat.ended) reconnectLater();
    };
  }

  function reconnectLater() {
    var delay = Math.min(MAX_BACKOFF_MS, 1000 * Math.pow(2, retries));
    retries += 1;
    setConn("Connection lost. Reconnecting\u2026");
    retryTimer = setTimeout(connect, delay * (0.75 + Math.random() / 2));
  }

  window.addEventListener("online", function () { if (retryTimer) connect(); });

  function disconnect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    if (socket) { var ws = socket; socket = null; ws.close(); }
  }

  // -- talking to the API ----------------------------------------------------------------------

  function post(path, body, token) {
    var headers = { "Content-Type": "application/json" };
    if (token) headers.Authorization = "Bearer " + token;
    return fetch(apiBase + path, { method: "POST", headers: headers, body: JSON.stringify(body || {}),
                                   credentials: "omit" })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (data) {
          if (response.ok) return data;
          var error = new Error(data && data.error ? String(data.error)
            : "Something went wrong (" + response.status + "). Please try again.");
          error.status = response.status;
          throw error;
        });
      }, function () {
        var error = new Error("We could not reach the chat service. Check your connection and try again.");
        error.status = 0;
        throw error;
      });
  }

  function showChat() {
    startForm.hidden = true;
    chatView.hidden = false;
    messageInput.disabled = !!chat.ended;
    sendButton.disabled = !!chat.ended;
    endButton.hidden = !!chat.ended;
    newButton.hidden = !chat.ended;
  }

  function finish() {
    if (!chat) return;
    var hadFocus = dialog.contains(document.activeElement) &&
      (document.activeElement === messageInput || document.activeElement === sendButton ||
       document.activeElement === endButton);
    chat.ended = true;
    save();
    disconnect();
    setConn("");
    setPhase("The chat has ended.");
    showChat();
    if (hadFocus) newButton.focus();
  }

  function goneChat() {
    addRow("system", "", "This chat is no longer available.", null);
    finish();
  }

  startForm.addEventListener("submit", function (event) {
    event.preventDefault();
    if (startButton.disabled) return;
    startButton.disabled = true;
    startError.textContent = "";
    post("/chats", {
      service: service,
      text: firstInput.value,
      customer: { name: nameInput.value.trim(), email: emailInput.value.trim() }
    }).then(function (opened) {
      chat = { chatId: opened.chat_id, token: opened.token, seq: 0, ended: false,
               open: isOpen(), agent: "", events: [] };
      save();
      firstInput.value = "";
      setPhase(opened.position > 0 ? "You are number " + opened.position + " in the queue"
                                   : "Connecting you to an agent\u2026");
      showChat();
      connect();
      messageInput.focus();
    }, function (error) {
      startError.textContent = error.message;
    }).then(function () { startButton.disabled = false; });
  });

  function send() {
    var text = messageInput.value;
    if (!chat || chat.ended || !text.trim()) return;
    messageInput.value = "";
    chatError.textContent = "";
    post("/chats/" + encodeURIComponent(chat.chatId) + "/messages", { text: text }, chat.token)
      .then(function () {
        if (!socket) connect(); // the echo comes back over the socket
      }, function (error) {
        if (error.status === 401 || error.status === 404) { goneChat(); return; }
        if (!messageInput.value) messageInput.value = text; // keep what was typed
        chatError.textContent = error.message;
      });
  }

  compose.addEventListener("submit", function (event) { event.preventDefault(); send(); });
  messageInput.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
  firstInput.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      if (startForm.requestSubmit) startForm.requestSubmit(startButton);
      else startButton.click();
    }
  });

  endButton.addEventListener("click", function () {
    if (!chat || chat.ended) return;
    endButton.disabled = true;
    chatError.textContent = "";
    post("/chats/" + encodeURIComponent(chat.chatId) + "/end", {}, chat.token).then(function () {
      if (!socket) connect(); // the `ended` event arrives over the socket
    }, function (error) {
      if (error.status === 401 || error.status === 404) goneChat();
      else chatError.textContent = error.message;
    }).then(function () { endButton.disabled = false; });
  });

  newButton.addEventListener("click", function () {
    disconnect();
    chat = null;
    save();
    while (log.firstChild) log.removeChild(log.firstChild);
    chatError.textContent = "";
    setPhase("");
    chatView.hidden = true;
    startForm.hidden = false;
    nameInput.focus();
  });

  // -- a page reload continues the chat --------------------------------------------------------

  if (chat) {
    var stored = chat.events || [];
    chat.events = stored;
    stored.forEach(render);
    setUnread(false);
    showChat();
    if (chat.ended) setPhase("The chat has ended.");
    else connect();
    if (chat.open) open(false);
  }
})();
