// The study page: lesson tree, lesson text and a chat panel speaking the ChatKit protocol to
// POST /chatkit (JSON requests, and Server-Sent Events for the streaming ones).
//
// Model and lesson text is only ever rendered through markdown.js (DOM nodes, never innerHTML).

import { renderInto } from "./markdown.js";
import { readEvents } from "./sse.js";

const $ = (id) => document.getElementById(id);

const state = {
  lesson: null, // {path, title}
  threadId: null,
  streaming: null, // AbortController of the open stream
  assistant: new Map(), // item id -> {element, text}
};

// ---------- identity ----------

const USER_KEY = "study.userId";
const TOKEN_KEY = "study.token";

function userId() {
  let id = localStorage.getItem(USER_KEY);
  if (!id) {
    id = `student-${Math.random().toString(36).slice(2, 10)}`;
    localStorage.setItem(USER_KEY, id);
  }
  return id;
}

function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}` } : { "X-User-ID": userId() };
}

function showIdentity() {
  $("user-id").value = userId();
  $("token").value = sessionStorage.getItem(TOKEN_KEY) ?? "";
  $("identity-summary").textContent = sessionStorage.getItem(TOKEN_KEY) ? "bearer token" : userId();
}

function saveIdentity(event) {
  event.preventDefault();
  const id = $("user-id").value.trim();
  if (id) localStorage.setItem(USER_KEY, id);
  const token = $("token").value.trim();
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
  showIdentity();
  $("identity").open = false;
  startThread();
  refreshHistory();
}

// ---------- errors ----------

/** A readable message for a failed response: the JSON error message, and Retry-After on 429. */
async function errorMessage(response) {
  let message = `${response.status} ${response.statusText}`.trim();
  try {
    const body = await response.json();
    if (body?.error?.message) message = body.error.message;
  } catch {
    // not JSON: keep the status line
  }
  if (response.status === 429) {
    const retry = response.headers.get("Retry-After");
    return `Too many requests: ${message}${retry ? ` Try again in ${retry} s.` : ""}`;
  }
  if (response.status === 401) return `Not signed in: ${message}`;
  return message;
}

function showAlert(message, level = "error") {
  const alert = $("alert");
  alert.textContent = message;
  alert.dataset.level = level;
  alert.hidden = false;
}

function clearAlert() {
  $("alert").hidden = true;
  $("alert").textContent = "";
}

class HttpError extends Error {}

async function getJson(url) {
  const response = await fetch(url, { headers: authHeaders() });
  if (!response.ok) throw new HttpError(await errorMessage(response));
  return response.json();
}

function chatkitUrl() {
  const query = new URLSearchParams();
  if (state.lesson) query.set("lesson_path", state.lesson.path);
  return `/chatkit?${query}`;
}

/** A non-streaming ChatKit request; resolves to the JSON answer. */
async function chatkit(type, params) {
  const response = await fetch(chatkitUrl(), {
    method: "POST",
    headers: { "Content-Type": "application/json", ...authHeaders() },
    body: JSON.stringify({ type, params }),
  });
  if (!response.ok) throw new HttpError(await errorMessage(response));
  return response.json();
}

// ---------- lessons ----------

async function loadLessonTree() {
  const tree = $("lesson-tree");
  try {
    const { lessons } = await getJson("/content/lessons");
    tree.replaceChildren(buildTree(lessons));
    tree.dataset.state = "ready";
    if (lessons.length === 0) tree.textContent = "No lessons found.";
  } catch (error) {
    tree.dataset.state = "error";
    tree.textContent = `Could not load the lessons: ${error.message}`;
  }
}

/** Nested lists by path folder; each lesson is a button. */
function buildTree(lessons) {
  const root = { children: new Map(), lessons: [] };
  for (const lesson of lessons) {
    const parts = lesson.path.split("/");
    let node = root;
    for (const folder of parts.slice(0, -1)) {
      if (!node.children.has(folder)) node.children.set(folder, { children: new Map(), lessons: [] });
      node = node.children.get(folder);
    }
    node.lessons.push(lesson);
  }
  return treeList(root);
}

function treeList(node) {
  const list = document.createElement("ul");
  for (const [folder, child] of node.children) {
    const item = document.createElement("li");
    const details = document.createElement("details");
    details.open = true;
    const summary = document.createElement("summary");
    summary.textContent = humanise(folder);
    details.append(summary, treeList(child));
    item.append(details);
    list.append(item);
  }
  for (const lesson of node.lessons) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "lesson-link";
    button.dataset.path = lesson.path;
    button.textContent = lesson.title;
    button.addEventListener("click", () => openLesson(lesson.path));
    item.append(button);
    list.append(item);
  }
  return list;
}

function humanise(segment) {
  const words = segment.replace(/^\d+[-_. ]*/, "").replace(/[-_]/g, " ").trim();
  return words ? words[0].toUpperCase() + words.slice(1) : segment;
}

async function openLesson(path) {
  const article = $("lesson");
  article.replaceChildren(textNode("p", "Loading the lesson…"));
  try {
    const lesson = await getJson(`/content/lesson?lesson_path=${encodeURIComponent(path)}`);
    state.lesson = { path: lesson.path, title: lesson.title };
    const body = document.createElement("div");
    body.className = "lesson-body";
    renderInto(body, lesson.body);
    // Most lessons open with their own `# Title`; add one only when the body has none.
    if (body.firstElementChild?.tagName === "H1") article.replaceChildren(body);
    else article.replaceChildren(textNode("h1", lesson.title), body);
    document.querySelectorAll(".lesson-link").forEach((b) => {
      b.setAttribute("aria-current", String(b.dataset.path === lesson.path));
    });
    history.replaceState(null, "", `#lesson=${encodeURIComponent(lesson.path)}`);
    startThread();
    await Promise.all([refreshHistory(), loadSuggestions()]);
  } catch (error) {
    state.lesson = null;
    startThread();
    $("thread-list").replaceChildren();
    $("suggestions").replaceChildren();
    article.replaceChildren(textNode("p", `Could not load the lesson: ${error.message}`));
  }
}

/** The lesson named in the URL fragment (`#lesson=path`), so links and Back work. */
function lessonFromHash() {
  return new URLSearchParams(location.hash.slice(1)).get("lesson");
}

function textNode(tag, text) {
  const element = document.createElement(tag);
  element.textContent = text;
  return element;
}

// ---------- suggestions ----------

async function loadSuggestions() {
  const box = $("suggestions");
  box.replaceChildren();
  if (!state.lesson) return;
  const query = new URLSearchParams({ lesson_path: state.lesson.path, mode: $("mode").value });
  try {
    const { suggestions } = await getJson(`/chatkit/suggestions?${query}`);
    for (const text of suggestions ?? []) {
      const chip = document.createElement("button");
      chip.type = "button";
      chip.className = "chip";
      chip.textContent = text;
      chip.addEventListener("click", () => send(text));
      box.append(chip);
    }
  } catch {
    // Suggestions are optional; the composer still works.
  }
}

// ---------- thread history ----------

const THREADS_KEY = "study.threadLessons";

/** thread id -> lesson path, remembered locally (the protocol does not return thread metadata). */
function threadLessons() {
  try {
    return JSON.parse(localStorage.getItem(THREADS_KEY) ?? "{}");
  } catch {
    return {};
  }
}

function rememberThread(id) {
  if (!state.lesson) return;
  const map = threadLessons();
  map[id] = state.lesson.path;
  localStorage.setItem(THREADS_KEY, JSON.stringify(map));
}

function forgetThread(id) {
  const map = threadLessons();
  delete map[id];
  localStorage.setItem(THREADS_KEY, JSON.stringify(map));
}

async function refreshHistory() {
  const list = $("thread-list");
  if (!state.lesson) {
    list.replaceChildren();
    return;
  }
  try {
    const page = await chatkit("threads.list", { limit: 50, order: "desc" });
    const map = threadLessons();
    const threads = page.data.filter((t) => map[t.id] === state.lesson.path);
    list.replaceChildren(...threads.map(threadRow));
    if (threads.length === 0) list.append(textNode("li", "No earlier chats for this lesson."));
  } catch (error) {
    list.replaceChildren(textNode("li", `Could not load the history: ${error.message}`));
  }
}

function threadRow(thread) {
  const item = document.createElement("li");
  item.className = "thread";
  item.dataset.threadId = thread.id;
  const open = document.createElement("button");
  open.type = "button";
  open.className = "thread-open";
  open.textContent = thread.title || "Untitled chat";
  if (thread.id === state.threadId) open.setAttribute("aria-current", "true");
  open.addEventListener("click", () => openThread(thread.id));
  const rename = iconButton("Rename", `Rename “${open.textContent}”`, () => startRename(item, thread));
  const remove = iconButton("Delete", `Delete “${open.textContent}”`, () => deleteThread(thread));
  rename.classList.add("thread-rename");
  remove.classList.add("thread-delete");
  item.append(open, rename, remove);
  return item;
}

function iconButton(text, label, onClick) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = text;
  button.setAttribute("aria-label", label);
  button.addEventListener("click", onClick);
  return button;
}

function startRename(item, thread) {
  const form = document.createElement("form");
  form.className = "rename-form";
  const input = document.createElement("input");
  input.value = thread.title ?? "";
  input.setAttribute("aria-label", "New title");
  input.maxLength = 200;
  const save = document.createElement("button");
  save.type = "submit";
  save.textContent = "Save";
  form.append(input, save);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await chatkit("threads.update", { thread_id: thread.id, title: input.value.trim() || "Untitled chat" });
    } catch (error) {
      showAlert(error.message);
    }
    await refreshHistory();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape") refreshHistory();
  });
  item.replaceChildren(form);
  input.focus();
}

async function deleteThread(thread) {
  if (!window.confirm(`Delete “${thread.title || "Untitled chat"}”?`)) return;
  try {
    await chatkit("threads.delete", { thread_id: thread.id });
    forgetThread(thread.id);
    if (state.threadId === thread.id) startThread();
  } catch (error) {
    showAlert(error.message);
  }
  await refreshHistory();
}

async function openThread(id) {
  abortStream();
  clearAlert();
  try {
    const items = [];
    let after = null;
    // Page through the whole thread, oldest first.
    for (let page = 0; page < 20; page += 1) {
      const params = { thread_id: id, order: "asc", limit: 100 };
      if (after) params.after = after;
      const result = await chatkit("items.list", params);
      items.push(...result.data);
      if (!result.has_more || !result.after) break;
      after = result.after;
    }
    state.threadId = id;
    $("messages").replaceChildren();
    state.assistant.clear();
    for (const item of items) showItem(item);
    $("suggestions").hidden = true;
    markCurrentThread();
  } catch (error) {
    showAlert(error.message);
  }
}

function markCurrentThread() {
  document.querySelectorAll(".thread-open").forEach((b) => {
    b.setAttribute("aria-current", String(b.closest(".thread").dataset.threadId === state.threadId));
  });
}

/** A fresh, empty conversation (the thread is created by the first message). */
function startThread() {
  abortStream();
  state.threadId = null;
  state.assistant.clear();
  $("messages").replaceChildren();
  $("suggestions").hidden = false;
  clearAlert();
  markCurrentThread();
}

// ---------- messages ----------

function showItem(item) {
  if (item.type === "user_message") {
    const text = (item.content ?? []).map((c) => c.text ?? "").join("");
    if (text.trim()) addMessage("user", item.id, text);
  } else if (item.type === "assistant_message") {
    const entry = assistantEntry(item.id);
    entry.text = (item.content ?? []).map((c) => c.text ?? "").join("");
    paint(entry);
    finishAssistant(item.id);
  }
}

function addMessage(role, id, text) {
  const li = document.createElement("li");
  li.className = `message ${role}`;
  li.dataset.itemId = id;
  const who = textNode("span", role === "user" ? "You" : "Tutor");
  who.className = "who";
  const body = document.createElement("div");
  body.className = "body";
  renderInto(body, text);
  li.append(who, body);
  $("messages").append(li);
  li.scrollIntoView({ block: "end" });
  return li;
}

function assistantEntry(id) {
  let entry = state.assistant.get(id);
  if (!entry) {
    const element = addMessage("assistant", id, "");
    element.setAttribute("aria-busy", "true");
    entry = { element, text: "", scheduled: false };
    state.assistant.set(id, entry);
  }
  return entry;
}

/** Re-renders a reply at most once per animation frame while deltas arrive. */
function paint(entry) {
  if (entry.scheduled) return;
  entry.scheduled = true;
  requestAnimationFrame(() => {
    entry.scheduled = false;
    renderInto(entry.element.querySelector(".body"), entry.text);
    entry.element.scrollIntoView({ block: "end" });
  });
}

function finishAssistant(id) {
  const entry = state.assistant.get(id);
  if (!entry || entry.element.querySelector(".feedback")) return;
  entry.element.setAttribute("aria-busy", "false");
  entry.element.dataset.done = "true";
  const box = document.createElement("div");
  box.className = "feedback";
  box.append(feedbackButton(id, "positive", "Helpful"), feedbackButton(id, "negative", "Not helpful"));
  entry.element.append(box);
}

function feedbackButton(itemId, kind, label) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = label;
  button.setAttribute("aria-pressed", "false");
  button.dataset.kind = kind;
  button.addEventListener("click", async () => {
    try {
      await chatkit("items.feedback", { thread_id: state.threadId, item_ids: [itemId], kind });
      button.parentElement.querySelectorAll("button").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
    } catch (error) {
      showAlert(error.message);
    }
  });
  return button;
}

function applyEvent(event) {
  switch (event.type) {
    case "thread.created":
      state.threadId = event.thread.id;
      rememberThread(event.thread.id);
      break;
    case "thread.updated":
      refreshHistory();
      break;
    case "thread.item.added":
      if (event.item.type === "assistant_message") assistantEntry(event.item.id);
      break;
    case "thread.item.updated":
      applyUpdate(event.item_id, event.update);
      break;
    case "thread.item.done":
      showDone(event.item);
      break;
    case "thread.item.removed":
      document.querySelector(`[data-item-id="${CSS.escape(event.item_id)}"]`)?.remove();
      break;
    case "error":
      showAlert(event.message || `The tutor failed (${event.code}).${event.allow_retry ? " You can try again." : ""}`);
      break;
    case "notice":
      showAlert(event.message, event.level);
      break;
    default:
      break; // stream_options, progress_update, client_effect: nothing to show
  }
}

function applyUpdate(itemId, update) {
  const entry = assistantEntry(itemId);
  if (update.type === "assistant_message.content_part.text_delta") entry.text += update.delta;
  else if (update.type.startsWith("assistant_message.content_part.") && update.content) entry.text = update.content.text ?? entry.text;
  paint(entry);
}

function showDone(item) {
  if (item.type === "user_message") {
    if (!document.querySelector(`[data-item-id="${CSS.escape(item.id)}"]`)) showItem(item);
    return;
  }
  if (item.type === "assistant_message") {
    const entry = assistantEntry(item.id);
    entry.text = (item.content ?? []).map((c) => c.text ?? "").join("");
    paint(entry);
    finishAssistant(item.id);
  }
}

// ---------- sending ----------

async function send(text) {
  if (state.streaming) return;
  if (!state.lesson) {
    showAlert("Pick a lesson first.", "info");
    return;
  }
  clearAlert();
  $("suggestions").hidden = true;
  const input = {
    content: [{ type: "input_text", text }],
    attachments: [],
    quoted_text: null,
    inference_options: { model: $("mode").value },
  };
  const body = state.threadId
    ? { type: "threads.add_user_message", params: { thread_id: state.threadId, input } }
    : { type: "threads.create", params: { input } };
  await stream(body);
  await refreshHistory();
}

async function stream(body) {
  const controller = new AbortController();
  state.streaming = controller;
  setStreaming(true);
  try {
    const response = await fetch(chatkitUrl(), {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream", ...authHeaders() },
      body: JSON.stringify(body),
      signal: controller.signal,
    });
    if (!response.ok) throw new HttpError(await errorMessage(response));
    for await (const event of readEvents(response)) applyEvent(event);
  } catch (error) {
    if (error.name === "AbortError") showAlert("Stopped.", "info");
    else showAlert(error instanceof HttpError ? error.message : `Connection failed: ${error.message}`);
  } finally {
    for (const [id, entry] of state.assistant) {
      if (entry.element.getAttribute("aria-busy") === "true") finishAssistant(id);
    }
    state.streaming = null;
    setStreaming(false);
  }
}

function abortStream() {
  state.streaming?.abort();
}

function setStreaming(on) {
  $("send").disabled = on;
  $("stop").hidden = !on;
  $("chat-title").closest(".chat").dataset.streaming = String(on);
  if (!on) $("composer-input").focus();
}

function submitComposer(event) {
  event.preventDefault();
  const input = $("composer-input");
  const text = input.value.trim();
  if (!text || state.streaming) return;
  input.value = "";
  send(text);
}

// ---------- start ----------

function init() {
  showIdentity();
  $("identity-form").addEventListener("submit", saveIdentity);
  $("composer").addEventListener("submit", submitComposer);
  $("composer-input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) submitComposer(event);
  });
  $("stop").addEventListener("click", abortStream);
  $("new-thread").addEventListener("click", startThread);
  $("mode").addEventListener("change", loadSuggestions);
  window.addEventListener("hashchange", () => {
    const wanted = lessonFromHash();
    if (wanted && wanted !== state.lesson?.path) openLesson(wanted);
  });
  loadLessonTree().then(() => {
    const wanted = lessonFromHash();
    if (wanted) openLesson(wanted);
  });
  document.body.dataset.ready = "true";
}

init();
