// The sandbox page: a small Slack drawn from GET /sandbox/state, kept live by the
// /sandbox/events stream, acting through the page API (see tools' sandbox_api.md).
// No framework and no innerHTML: every piece of text the bot or a person wrote goes
// into the page as a text node, so nothing in a message can become markup.
"use strict";

const ui = {
  user: localStorage.getItem("sandbox.user"),   // null: the sandbox's first person (the requester)
  view: null,              // a channel id, or "home"; null: #helpdesk
  threadTs: null,          // the open thread's parent ts (in ui.view's channel)
  state: null,
  modalKey: null,          // what the open modal was drawn from (redrawn only when it changes)
  modalErrors: null,
};

const $ = (id) => document.getElementById(id);
const ROLES = { requester: "requester", team: "team member", admin: "admin" };

// ---------------------------------------------------------------- DOM helpers

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function toast(text, isError) {
  const box = $("toast");
  box.textContent = text;
  box.className = "toast" + (isError ? " toast-error" : "");
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, isError ? 6000 : 2500);
}

// ---------------------------------------------------------------- the page API

async function api(path, body, quiet) {
  const response = await fetch(path, {
    method: body === undefined ? "GET" : "POST",
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await response.json(); } catch (_) { data = null; }
  if (!response.ok || !data || data.ok === false) {
    const why = (data && data.error) || `${response.status} ${response.statusText}`;
    if (!quiet) toast(`Could not do that: ${why}`, true);
    const error = new Error(why);
    error.status = response.status;
    throw error;
  }
  return data;
}

let fetching = null;
let again = false;

// Re-fetch the state; calls that arrive while one is in flight fold into one more.
async function refresh() {
  if (fetching) { again = true; return fetching; }
  fetching = (async () => {
    try {
      do {
        again = false;
        const query = new URLSearchParams();
        if (ui.user) query.set("user", ui.user);
        if (ui.view && ui.view !== "home") query.set("read", ui.view);   // the channel on screen is read
        const who = query.size ? `?${query}` : "";
        const asked = ui.user;
        let state;
        try {
          state = await api(`/sandbox/state${who}`, undefined, true);
        } catch (error) {
          if (error.status !== 404 || !ui.user) throw error;
          ui.user = null;          // a person this sandbox does not have (an old choice)
          localStorage.removeItem("sandbox.user");
          again = true;
          continue;
        }
        if (asked !== ui.user) { again = true; continue; }   // another person was picked meanwhile
        ui.state = state;
        ui.user = state.me;
        render();
      } while (again);
    } catch (error) {
      toast(`The sandbox does not answer (${error.message}); is it still running?`, true);
    } finally {
      fetching = null;
    }
  })();
  return fetching;
}

function listen() {
  const stream = new EventSource("/sandbox/events");
  stream.onmessage = () => refresh();
  stream.onopen = () => { document.body.classList.remove("offline"); refresh(); };
  stream.onerror = () => document.body.classList.add("offline");
}

// ---------------------------------------------------------------- mrkdwn

const EMOJI = {
  bulb: "💡", white_check_mark: "✅", heavy_check_mark: "✔️", x: "❌", warning: "⚠️",
  rotating_light: "🚨", ticket: "🎫", wave: "👋", hourglass: "⌛", hourglass_flowing_sand: "⏳",
  arrows_counterclockwise: "🔄", leftwards_arrow_with_hook: "↩️", information_source: "ℹ️",
  mag: "🔍", bell: "🔔", no_entry: "⛔", no_entry_sign: "🚫", lock: "🔒", key: "🔑",
  star: "⭐", tada: "🎉", thumbsup: "👍", "+1": "👍", thumbsdown: "👎", "-1": "👎",
  speech_balloon: "💬", memo: "📝", pencil: "📝", clipboard: "📋", bar_chart: "📊",
  chart_with_upwards_trend: "📈", calendar: "📅", clock: "🕐", alarm_clock: "⏰",
  red_circle: "🔴", large_orange_circle: "🟠", large_yellow_circle: "🟡", large_green_circle: "🟢",
  white_circle: "⚪", fire: "🔥", robot_face: "🤖", bust_in_silhouette: "👤", busts_in_silhouette: "👥",
  raising_hand: "🙋", point_right: "👉", eyes: "👀", sos: "🆘", sparkles: "✨", shield: "🛡️",
  wrench: "🔧", hammer_and_wrench: "🛠️", gear: "⚙️", envelope: "✉️", inbox_tray: "📥",
  outbox_tray: "📤", link: "🔗", books: "📚", book: "📖", question: "❓", exclamation: "❗",
  heavy_plus_sign: "➕", heavy_minus_sign: "➖", arrow_right: "➡️", arrow_up: "⬆️",
  arrow_down: "⬇️", stopwatch: "⏱️", zzz: "💤", construction: "🚧", pushpin: "📌",
  house: "🏠", mailbox_with_mail: "📬", pray: "🙏", ok_hand: "👌", handshake: "🤝",
  hourglass_done: "⌛", triangular_flag_on_post: "🚩", scales: "⚖️", lock_with_ink_pen: "🔏",
};

function emojify(text) {
  return text.replace(/:([a-z0-9_+\-]+):/g, (whole, name) => EMOJI[name] || whole);
}

// Slack escapes &, < and > in text; the page shows them as the characters they are.
function unescapeSlack(text) {
  return text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
}

function personName(id) {
  const people = (ui.state && ui.state.people) || [];
  const person = people.find((p) => p.id === id);
  return person ? person.name : id;
}

function channelName(id) {
  const channels = (ui.state && ui.state.channels) || [];
  const channel = channels.find((c) => c.id === id);
  return channel ? channel.name : null;
}

function safeUrl(url) {
  return /^(https?:|mailto:)/i.test(url) ? url : null;
}

// One <...> token of Slack's markup: a link, a person, a channel, a special mention.
function angleToken(inner) {
  const bar = inner.indexOf("|");
  const target = bar >= 0 ? inner.slice(0, bar) : inner;
  const label = bar >= 0 ? inner.slice(bar + 1) : null;
  if (target.startsWith("@")) {
    return el("span", { class: "mention" }, "@" + (label || personName(target.slice(1))));
  }
  if (target.startsWith("#")) {
    const id = target.slice(1);
    const name = label || channelName(id) || id;
    return el("button", { type: "button", class: "mention channel-mention",
                          onclick: () => channelName(id) && go(id) }, "#" + name);
  }
  if (target.startsWith("!")) {
    if (target.startsWith("!subteam^")) return el("span", { class: "mention" }, label || "@group");
    if (target.startsWith("!date^")) {
      const parts = target.split("^");
      const when = new Date(Number(parts[1]) * 1000);
      return el("span", { class: "date" }, isNaN(when) ? (label || "") : when.toLocaleString());
    }
    return el("span", { class: "mention" }, "@" + (label || target.slice(1)));
  }
  const url = safeUrl(unescapeSlack(target));
  const text = unescapeSlack(label || target);
  if (!url) return document.createTextNode(text);
  return el("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, text);
}

// Inline markup within one line: `code`, <tokens>, *bold*, _italic_, ~strike~.
const INLINE = new RegExp(
  [
    "`([^`\\n]+)`",
    "<([^<>\\n]+)>",
    "(?<![\\w*])\\*(?!\\s)([^*\\n]+?)(?<!\\s)\\*(?![\\w*])",
    "(?<![\\w_])_(?!\\s)([^_\\n]+?)(?<!\\s)_(?![\\w_])",
    "(?<![\\w~])~(?!\\s)([^~\\n]+?)(?<!\\s)~(?![\\w~])",
  ].join("|"),
  "g",
);

function inline(text, parent) {
  let last = 0;
  for (const match of text.matchAll(INLINE)) {   // matchAll copies the regex: safe to recurse
    if (match.index > last) parent.append(emojify(unescapeSlack(text.slice(last, match.index))));
    const [, code, angle, bold, italic, strike] = match;
    if (code !== undefined) parent.append(el("code", {}, unescapeSlack(code)));
    else if (angle !== undefined) parent.append(angleToken(angle));
    else {
      const tag = bold !== undefined ? "strong" : italic !== undefined ? "em" : "s";
      const node = el(tag, {});
      inline(bold ?? italic ?? strike, node);
      parent.append(node);
    }
    last = match.index + match[0].length;
  }
  if (last < text.length) parent.append(emojify(unescapeSlack(text.slice(last))));
}

function lines(text, parent) {
  const rows = text.split("\n");
  let quote = null;
  rows.forEach((row, i) => {
    const quoted = /^(&gt;|>) ?/.exec(row);
    if (quoted) {
      if (!quote) { quote = el("blockquote", {}); parent.append(quote); }
      else quote.append(el("br"));
      inline(row.slice(quoted[0].length), quote);
      return;
    }
    if (quote) { quote = null; }
    else if (i > 0) parent.append(el("br"));
    inline(row, parent);
  });
}

function mrkdwn(text, tag = "div") {
  const root = el(tag, { class: "mrkdwn" });
  const parts = String(text || "").split("```");
  parts.forEach((part, i) => {
    if (i % 2 === 1 && i < parts.length - 1) {
      root.append(el("pre", {}, unescapeSlack(part.replace(/^\n/, ""))));
    } else {
      let chunk = i % 2 === 1 ? "```" + part : part;   // an unclosed ``` stays as typed
      if (i > 0 && i % 2 === 0) chunk = chunk.replace(/^\n/, "");
      if (chunk) lines(chunk, root);
    }
  });
  return root;
}

function textObject(obj, tag = "div") {
  if (!obj) return el(tag, {});
  if (typeof obj === "string") return mrkdwn(obj, tag);
  if (obj.type === "mrkdwn") return mrkdwn(obj.text, tag);
  return el(tag, { class: "plain" }, obj.emoji === false ? obj.text : emojify(obj.text || ""));
}

function plain(obj) {
  if (!obj) return "";
  return emojify(unescapeSlack(typeof obj === "string" ? obj : obj.text || ""));
}

// ---------------------------------------------------------------- Block Kit

// `where` says what a click is about: {channel, message_ts} for a message, {view_id} for a view.
function renderBlocks(blocks, where) {
  const box = el("div", { class: "blocks" });
  for (const block of blocks || []) {
    const node = renderBlock(block, where);
    if (node) box.append(node);
  }
  return box;
}

function renderBlock(block, where) {
  switch (block.type) {
    case "section": {
      const node = el("div", { class: "bk-section" });
      const body = el("div", { class: "bk-section-body" });
      if (block.text) body.append(textObject(block.text));
      if (block.fields && block.fields.length) {
        body.append(el("div", { class: "bk-fields" }, block.fields.map((f) => textObject(f, "div"))));
      }
      node.append(body);
      if (block.accessory) node.append(el("div", { class: "bk-accessory" }, element(block.accessory, block, where)));
      return node;
    }
    case "context":
      return el("div", { class: "bk-context" }, (block.elements || []).map((e) =>
        e.type === "image" ? el("span", { class: "bk-image-alt" }, `[${e.alt_text || "image"}]`)
                           : textObject(e, "span")));
    case "divider":
      return el("hr", { class: "bk-divider" });
    case "header":
      return el("h3", { class: "bk-header" }, plain(block.text));
    case "actions":
      return el("div", { class: "bk-actions" }, (block.elements || []).map((e) => element(e, block, where)));
    case "input":
      return inputBlock(block);
    case "image":
      return el("div", { class: "bk-image-alt" }, `[image: ${block.alt_text || block.title?.text || ""}]`);
    case "rich_text":
      return el("div", { class: "mrkdwn" }, richText(block));
    default:
      return el("div", { class: "bk-unknown" }, `(a ${block.type} block, not drawn by the sandbox)`);
  }
}

function richText(node) {
  if (node.type === "text") return node.text || "";
  if (node.type === "user") return "@" + personName(node.user_id);
  if (node.type === "channel") return "#" + (channelName(node.channel_id) || node.channel_id);
  if (node.type === "link") return node.text || node.url || "";
  if (node.type === "emoji") return EMOJI[node.name] || `:${node.name}:`;
  return (node.elements || []).map(richText).join("");
}

function element(e, block, where) {
  if (e.type === "button") return button(e, block, where);
  if (e.type === "static_select" || e.type === "overflow") return selectMenu(e, block, where);
  if (e.type === "image") return el("span", { class: "bk-image-alt" }, `[${e.alt_text || "image"}]`);
  return el("span", { class: "bk-unknown" }, `(${e.type})`);
}

function button(e, block, where) {
  const classes = ["bk-btn"];
  if (e.style === "primary") classes.push("bk-primary");
  if (e.style === "danger") classes.push("bk-danger");
  const node = el("button", {
    type: "button", class: classes.join(" "),
    "aria-label": e.accessibility_label || null,
    dataset: { actionId: e.action_id || "" },
  }, plain(e.text));
  node.addEventListener("click", async () => {
    if (e.confirm && !(await confirmDialog(e.confirm))) return;
    const url = e.url && safeUrl(e.url);
    if (url) window.open(url, "_blank", "noopener");
    click(where, block, e, { value: e.value });
  });
  return node;
}

function options(e) {
  const groups = e.option_groups ? e.option_groups.flatMap((g) => g.options) : e.options || [];
  return groups;
}

function selectMenu(e, block, where) {
  const label = e.type === "overflow" ? "More actions" : plain(e.placeholder) || "Choose";
  const select = el("select", { class: "bk-select", "aria-label": label, dataset: { actionId: e.action_id || "" } },
    el("option", { value: "" }, e.type === "overflow" ? "⋯" : label),
    options(e).map((o) => el("option", { value: o.value }, plain(o.text))));
  if (e.initial_option) select.value = e.initial_option.value;
  select.addEventListener("change", async () => {
    const option = options(e).find((o) => o.value === select.value);
    if (!option) return;
    if (e.confirm && !(await confirmDialog(e.confirm))) { select.value = ""; return; }
    const picked = { text: option.text, value: option.value };
    click(where, block, e, e.type === "overflow" ? { selected_option: picked, value: option.value }
                                                 : { selected_option: picked });
  });
  return select;
}

async function click(where, block, e, extra) {
  const body = { user: ui.user, action_id: e.action_id, block_id: block.block_id || "", ...where, ...extra };
  try { await api("/sandbox/click", body); } catch (_) { /* the toast said why */ }
  refresh();
}

// ---------------------------------------------------------------- the confirm dialog

function confirmDialog(confirm) {
  return new Promise((resolve) => {
    const layer = $("confirm-layer");
    const finish = (answer) => {
      layer.hidden = true;
      layer.replaceChildren();
      document.removeEventListener("keydown", onKey, true);
      resolve(answer);
    };
    const onKey = (event) => { if (event.key === "Escape") { event.stopPropagation(); finish(false); } };
    const yes = el("button", { type: "button", class: "bk-btn " + (confirm.style === "danger" ? "bk-danger" : "bk-primary"),
                               onclick: () => finish(true) }, plain(confirm.confirm) || "Yes");
    const no = el("button", { type: "button", class: "bk-btn", onclick: () => finish(false) }, plain(confirm.deny) || "Cancel");
    const dialog = el("div", { class: "dialog confirm-dialog", role: "alertdialog", "aria-modal": "true",
                               "aria-labelledby": "confirm-title" },
      el("h2", { id: "confirm-title", class: "dialog-title" }, plain(confirm.title) || "Are you sure?"),
      el("div", { class: "dialog-body" }, textObject(confirm.text)),
      el("div", { class: "dialog-footer" }, no, yes));
    layer.replaceChildren(dialog);
    layer.hidden = false;
    document.addEventListener("keydown", onKey, true);
    yes.focus();
  });
}

// ---------------------------------------------------------------- modals

let inputSeq = 0;

function inputBlock(block) {
  const e = block.element || {};
  const id = `input-${++inputSeq}`;
  const wrap = el("div", { class: "bk-input", dataset: { blockId: block.block_id || "", actionId: e.action_id || "" } });
  wrap.append(el("label", { for: id, class: "bk-label" }, plain(block.label),
                 block.optional ? el("span", { class: "optional" }, " (optional)") : null));
  let control;
  if (e.type === "plain_text_input") {
    control = el(e.multiline ? "textarea" : "input", {
      id, class: "bk-text", type: e.multiline ? null : "text", rows: e.multiline ? 4 : null,
      placeholder: e.placeholder ? plain(e.placeholder) : null,
      maxlength: e.max_length || null, minlength: e.min_length || null,
    });
    control.value = e.initial_value || "";
  } else if (e.type === "static_select") {
    control = el("select", { id, class: "bk-select" }, el("option", { value: "" }, plain(e.placeholder) || "Choose"),
      options(e).map((o) => el("option", { value: o.value }, plain(o.text))));
    if (e.initial_option) control.value = e.initial_option.value;
  } else {
    control = el("div", { id, class: "bk-unknown" }, `(a ${e.type} input, not drawn by the sandbox)`);
  }
  control.dataset.role = "value";
  wrap.append(control);
  if (block.hint) wrap.append(el("div", { class: "bk-hint" }, plain(block.hint)));
  const error = ui.modalErrors && ui.modalErrors[block.block_id];
  if (error) {
    wrap.classList.add("has-error");
    wrap.append(el("div", { class: "bk-error", role: "alert" }, error));
  }
  return wrap;
}

function modalValues(form) {
  const values = {};
  for (const wrap of form.querySelectorAll(".bk-input")) {
    const control = wrap.querySelector("[data-role=value]");
    if (!control || control.value === undefined) continue;
    values[wrap.dataset.blockId] = { [wrap.dataset.actionId]: control.value };
  }
  return values;
}

function renderModal() {
  const layer = $("modal-layer");
  const open = ui.state.modal;
  // Errors belong to the view they were given for: gone with it.
  if (ui.modalErrors && (!open || open.view_id !== ui.modalErrorsFor)) ui.modalErrors = null;
  const key = open ? JSON.stringify([open.view_id, open.view, ui.modalErrors]) : null;
  if (key === ui.modalKey) return;   // unchanged: keep what the person is typing
  const typed = ui.modalKey && open && layer.querySelector("form") ? modalValues(layer.querySelector("form")) : null;
  ui.modalKey = key;
  if (!open) { layer.hidden = true; layer.replaceChildren(); return; }
  const view = open.view;
  const where = { view_id: open.view_id };
  const form = el("form", { class: "dialog modal", role: "dialog", "aria-modal": "true", "aria-labelledby": "modal-title",
                            dataset: { viewId: open.view_id } });
  const close = () => api("/sandbox/close", { user: ui.user, view_id: open.view_id }).finally(() => {
    ui.modalErrors = null; refresh();
  });
  form.append(el("div", { class: "dialog-header" },
    el("h2", { id: "modal-title", class: "dialog-title" }, plain(view.title)),
    el("button", { type: "button", class: "icon-btn", "aria-label": "Close", onclick: close }, "×")));
  form.append(el("div", { class: "dialog-body" }, renderBlocks(view.blocks, where)));
  const footer = el("div", { class: "dialog-footer" },
    el("button", { type: "button", class: "bk-btn", onclick: close }, plain(view.close) || "Cancel"));
  if (view.submit) footer.append(el("button", { type: "submit", class: "bk-btn bk-primary" }, plain(view.submit)));
  form.append(footer);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const answer = await api("/sandbox/submit", { user: ui.user, view_id: open.view_id, values: modalValues(form) });
      ui.modalErrors = answer.errors || null;
      ui.modalErrorsFor = open.view_id;
    } catch (_) { /* the toast said why */ }
    ui.modalKey = "(submitted)";   // draw again: errors, or the next view, or nothing
    refresh();
  });
  form.addEventListener("keydown", (event) => { if (event.key === "Escape") close(); });
  // A redraw after an error or an update keeps what was typed in the same inputs.
  if (typed) {
    for (const wrap of form.querySelectorAll(".bk-input")) {
      const before = typed[wrap.dataset.blockId];
      const control = wrap.querySelector("[data-role=value]");
      if (before && control && wrap.dataset.actionId in before) control.value = before[wrap.dataset.actionId];
    }
  }
  layer.replaceChildren(form);
  layer.hidden = false;
  const first = form.querySelector("input, textarea, select");
  if (first && !layer.contains(document.activeElement)) first.focus();
}

// ---------------------------------------------------------------- messages

function timeOf(ts) {
  const when = new Date(Number(ts) * 1000);
  return isNaN(when) ? "" : when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function initials(name) {
  return (name || "?").split(/\s+/).map((w) => w[0]).join("").slice(0, 2).toUpperCase();
}

function renderMessage(message, channel, { inThread, replies }) {
  const node = el("div", {
    class: "message" + (message.ephemeral ? " ephemeral" : "") + (message.bot ? " from-bot" : ""),
    dataset: { ts: message.ts },
  });
  node.append(el("div", { class: "avatar" + (message.bot ? " avatar-bot" : ""), "aria-hidden": "true" },
                 message.bot ? "R" : initials(message.name)));
  const body = el("div", { class: "message-body" });
  body.append(el("div", { class: "message-meta" },
    el("span", { class: "author" }, message.name || personName(message.user) || "someone"),
    message.bot ? el("span", { class: "app-tag" }, "APP") : null,
    el("span", { class: "time" }, timeOf(message.ts)),
    message.edited ? el("span", { class: "edited" }, "(edited)") : null));
  if (message.ephemeral) body.append(el("div", { class: "only-you" }, "👁 Only visible to you"));
  if (message.blocks && message.blocks.length) {
    body.append(renderBlocks(message.blocks, { channel, message_ts: message.ts }));
  } else {
    body.append(mrkdwn(message.text));
  }
  if (message.reactions && message.reactions.length) {
    body.append(el("div", { class: "reactions" }, message.reactions.map((r) =>
      el("span", { class: "reaction", title: r.users.map(personName).join(", ") },
         `${EMOJI[r.name] || ":" + r.name + ":"} ${r.users.length}`))));
  }
  if (!inThread && replies > 0) {
    body.append(el("button", { type: "button", class: "replies-link", onclick: () => openThread(message.ts) },
                   `${replies} ${replies === 1 ? "reply" : "replies"}`));
  }
  node.append(body);
  if (!message.ephemeral) {
    const tools = el("div", { class: "message-tools" });
    if (!inThread) {
      tools.append(el("button", { type: "button", class: "tool", title: "Reply in thread",
                                  onclick: () => openThread(message.ts) }, "💬 Reply"));
    }
    tools.append(el("button", { type: "button", class: "tool", title: "React with :ticket: (opens a ticket)",
                                "aria-label": "React with :ticket:",
                                onclick: () => act("/sandbox/react", { channel, ts: message.ts, name: "ticket" }) }, "🎫"));
    tools.append(el("button", { type: "button", class: "tool", title: "Create a ticket from this message",
                                onclick: () => act("/sandbox/shortcut", { channel, ts: message.ts, callback_id: "create_ticket" }) },
                    "Create ticket"));
    node.append(tools);
  }
  return node;
}

async function act(path, body) {
  try { await api(path, { user: ui.user, ...body }); } catch (_) { /* the toast said why */ }
  refresh();
}

// Redraw a list only when what it shows changed: a click in progress keeps its button.
function fillList(box, key, draw) {
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  const nodes = draw();
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  const before = box.scrollTop;
  box.replaceChildren(...nodes);
  box.scrollTop = atBottom ? box.scrollHeight : before;
}

function intro(channel) {
  const card = el("div", { class: "intro" });
  if (channel.name === "helpdesk") {
    card.append(el("h2", {}, "Welcome to the ResolveMeQ sandbox 👋"),
      el("p", {}, "This is #helpdesk, where people ask for IT help. Ask with ", el("code", {}, "/ticket"),
         " (or just write a message): the bot answers in the thread, routes to a team, or raises an alert. ",
         "Switch person at the top to see what the team and the admins see; the clock buttons move time for follow-ups and SLAs."),
      el("p", { class: "intro-try" }, "Try one:"));
    const examples = el("div", { class: "examples" });
    for (const example of ui.state.examples || []) {
      examples.append(el("button", { type: "button", class: "example", onclick: () => {
        const box = $("composer-text");
        box.value = example.text;
        grow(box);
        box.focus();
      } }, el("strong", {}, example.label), el("span", {}, example.text)));
    }
    card.append(examples);
  } else if (channel.kind === "dm") {
    card.append(el("h2", {}, "ResolveMeQ"), el("p", {}, "Your direct messages with the bot: follow-ups and notices land here. You can ask here too."));
  } else {
    card.append(el("h2", {}, "#" + channel.name), el("p", {}, "The start of #" + channel.name + "."));
  }
  return card;
}

function threadParts(list) {
  const top = [];
  const replies = {};
  for (const message of list) {
    if (message.thread_ts && message.thread_ts !== message.ts) (replies[message.thread_ts] ||= []).push(message);
    else top.push(message);
  }
  return { top, replies };
}

// ---------------------------------------------------------------- the frame

function channelsOf(kind) {
  return (ui.state.channels || []).filter((c) => (kind === "dm" ? c.kind === "dm" : c.kind !== "dm"));
}

function go(target) {
  ui.view = target;
  if (target !== ui.threadChannel) ui.threadTs = null;
  document.body.classList.remove("sidebar-open");
  $("menu-toggle").setAttribute("aria-expanded", "false");
  if (target === "home") api("/sandbox/home", { user: ui.user }).then(refresh, () => {});
  else refresh();   // tells the sandbox this channel is read
  render();
  if (target !== "home") $("composer-text").focus({ preventScroll: true });
}

function openThread(ts) {
  ui.threadTs = ts;
  ui.threadChannel = ui.view;
  render();
  $("thread-text").focus({ preventScroll: true });
}

function sideItem(channel) {
  const unread = channel.id !== ui.view && channel.unread;
  const label = channel.kind === "dm" ? channel.name || "ResolveMeQ" : channel.name;
  return el("li", {}, el("button", {
    type: "button", class: "side-item" + (channel.id === ui.view ? " active" : "") + (unread ? " unread" : ""),
    "aria-current": channel.id === ui.view ? "page" : null, dataset: { target: channel.id },
    onclick: () => go(channel.id),
  }, el("span", { class: "side-icon", "aria-hidden": "true" }, channel.kind === "dm" ? "●" : "#"),
     el("span", { class: "side-name" }, label),
     unread ? el("span", { class: "side-badge", "aria-label": `${unread} new` }, String(unread)) : null));
}

function render() {
  const state = ui.state;
  if (!state) return;
  const known = state.channels.map((c) => c.id);
  if (ui.view !== "home" && !known.includes(ui.view)) {
    const helpdesk = state.channels.find((c) => c.name === "helpdesk");
    ui.view = helpdesk ? helpdesk.id : known[0];
  }

  // The person switcher.
  const person = $("person");
  if (person.options.length !== state.people.length) {
    person.replaceChildren(...state.people.map((p) => el("option", { value: p.id }, `${p.name} (${ROLES[p.role] || p.role})`)));
  }
  person.value = ui.user;

  // The clock.
  const now = new Date(state.clock.now);
  const days = Math.round((state.clock.offset_seconds || 0) / 3600) / 24;
  $("clock-now").textContent = `🕐 ${isNaN(now) ? state.clock.now : now.toLocaleString([], {
    weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", hour12: false })}` +
    (days ? ` (+${days} d)` : "");

  // The sidebar.
  $("channel-list").replaceChildren(...channelsOf("channel").map(sideItem));
  $("dm-list").replaceChildren(...channelsOf("dm").map(sideItem));
  $("home-link").classList.toggle("active", ui.view === "home");

  const home = ui.view === "home";
  $("messages").hidden = home;
  $("composer").hidden = home;
  $("home").hidden = !home;
  if (home) {
    $("channel-title").textContent = "ResolveMeQ";
    $("channel-topic").textContent = "Home";
    const view = state.home;
    const box = $("home");
    const key = JSON.stringify([ui.user, view]);
    if (box.dataset.key !== key) {
      box.dataset.key = key;
      box.replaceChildren(view ? renderBlocks(view.blocks, { view_id: view.id || view.view_id || "" })
                               : el("p", { class: "muted" }, "Opening the Home tab…"));
    }
  } else {
    const channel = state.channels.find((c) => c.id === ui.view);
    const title = channel.kind === "dm" ? channel.name || "ResolveMeQ" : "#" + channel.name;
    $("channel-title").textContent = title;
    $("channel-topic").textContent = channel.kind === "dm" ? "Direct message with the bot" : "";
    $("composer-text").placeholder = `Message ${title}`;
    const list = state.messages[channel.id] || [];
    fillList($("messages"), JSON.stringify([channel, list, state.examples, state.people]), () => {
      const { top, replies } = threadParts(list);
      return [intro(channel), ...top.map((m) =>
        renderMessage(m, channel.id, { inThread: false, replies: Math.max(m.reply_count || 0, (replies[m.ts] || []).length) }))];
    });
  }

  // The thread pane.
  const threadOpen = !home && ui.threadTs && ui.threadChannel === ui.view;
  $("thread").hidden = !threadOpen;
  document.body.classList.toggle("thread-open", Boolean(threadOpen));
  if (threadOpen) {
    const list = state.messages[ui.view] || [];
    const parent = list.find((m) => m.ts === ui.threadTs);
    const replies = list.filter((m) => m.thread_ts === ui.threadTs && m.ts !== ui.threadTs);
    $("thread-channel").textContent = $("channel-title").textContent;
    fillList($("thread-messages"), JSON.stringify([ui.view, parent, replies, state.people]), () => [
      parent ? renderMessage(parent, ui.view, { inThread: true }) : el("p", { class: "muted" }, "(the message is gone)"),
      el("div", { class: "thread-divider" }, `${replies.length} ${replies.length === 1 ? "reply" : "replies"}`),
      ...replies.map((m) => renderMessage(m, ui.view, { inThread: true })),
    ]);
  }
  renderModal();
}

// ---------------------------------------------------------------- composing

function grow(box) {
  box.style.height = "auto";
  box.style.height = Math.min(box.scrollHeight, 200) + "px";
}

// What a Slack client sends for what was typed: &, < and > escaped (Slack's wire format),
// so a person's "<b>" reaches the bot as text, as it does from Slack.
function toWire(typed) {
  return typed.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function composer(form, box, threadTs) {
  const send = async () => {
    const typed = box.value.trim();
    if (!typed) return;
    const text = toWire(typed);
    const body = { user: ui.user, channel: ui.view, text };
    const thread = threadTs();
    if (thread) body.thread_ts = thread;
    box.disabled = true;
    try {
      await api("/sandbox/send", body);
      box.value = "";
      grow(box);
    } catch (_) { /* the toast said why; the text stays to try again */ }
    box.disabled = false;
    box.focus();
    refresh();
  };
  form.addEventListener("submit", (event) => { event.preventDefault(); send(); });
  box.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); send(); }
  });
  box.addEventListener("input", () => grow(box));
}

async function clock(body, label) {
  const buttons = [$("run-jobs"), $("skip-day")];
  buttons.forEach((b) => { b.disabled = true; });
  try {
    await api("/sandbox/clock", body);
    toast(label);
  } catch (_) { /* the toast said why */ }
  buttons.forEach((b) => { b.disabled = false; });
  refresh();
}

function start() {
  composer($("composer"), $("composer-text"), () => null);
  composer($("thread-composer"), $("thread-text"), () => ui.threadTs);
  $("person").addEventListener("change", (event) => {
    ui.user = event.target.value;
    localStorage.setItem("sandbox.user", ui.user);
    ui.modalKey = null;
    ui.modalErrors = null;
    if (ui.view === "home") api("/sandbox/home", { user: ui.user }).then(refresh, () => {});
    refresh();
  });
  $("home-link").addEventListener("click", () => go("home"));
  $("thread-close").addEventListener("click", () => { ui.threadTs = null; render(); });
  $("run-jobs").addEventListener("click", () => clock({ run_jobs: true }, "Jobs ran."));
  $("skip-day").addEventListener("click", () => clock({ advance_seconds: 86400 }, "The bot's clock moved 24 h ahead; jobs ran."));
  const toggle = $("menu-toggle");
  toggle.addEventListener("click", () => {
    const open = document.body.classList.toggle("sidebar-open");
    toggle.setAttribute("aria-expanded", String(open));
  });
  $("sidebar-scrim").addEventListener("click", () => {
    document.body.classList.remove("sidebar-open");
    toggle.setAttribute("aria-expanded", "false");
  });
  listen();
  refresh();
}

document.addEventListener("DOMContentLoaded", start);
