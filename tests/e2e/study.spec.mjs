// Browser end-to-end tests of the study page, run by scripts/test.d/50-browser.sh against a
// real server (BASE_URL) in Debian's headless Chromium through playwright-core.
//
// Synchronisation is by explicit waits on selectors and states, never by sleeping. Tests run in
// order and share one page where a later step needs an earlier one's thread.

import { createRequire } from "node:module";
import path from "node:path";
import fs from "node:fs";
import os from "node:os";
import http from "node:http";

const BASE_URL = process.env.BASE_URL ?? "http://127.0.0.1:8000";
const ARTIFACTS = process.env.E2E_ARTIFACTS ?? path.resolve("e2e-artifacts");
const NODE_MODULES = process.env.E2E_NODE_MODULES ?? path.join(os.homedir(), ".cache/study-mode-e2e/node_modules");
const CHAT_LIMIT = parseInt((process.env.RATE_LIMIT_CHAT ?? "6/minute").split("/")[0], 10);
const TIMEOUT = 30_000;
// A second origin (the book's pages): a tiny static server on another loopback port, listed in
// the service's ALLOWED_ORIGINS as http://127.0.0.1:ORIGIN_PORT (and not as localhost).
const ORIGIN_PORT = parseInt(process.env.ORIGIN_PORT ?? "0", 10);

const require = createRequire(path.join(NODE_MODULES, "noop.js"));
const { chromium } = require("playwright-core");

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

function expect(condition, message) {
  if (!condition) throw new Error(message);
}

// ---------- fixtures ----------

let context;
let page;
const offOrigin = [];
const pageErrors = [];

/** Switches the identity through the page's own form (localStorage is shared by all pages). */
async function switchUser(p, userId) {
  await p.click("#identity summary");
  await p.fill("#user-id", userId);
  await p.press("#user-id", "Enter");
  await p.locator("#identity-summary", { hasText: userId }).waitFor();
}

async function openStudy(p) {
  await p.goto(`${BASE_URL}/study`);
  await p.waitForSelector("body[data-ready='true']");
  await p.waitForSelector("#lesson-tree[data-state='ready'] .lesson-link");
}

async function pickFirstLesson(p) {
  const link = p.locator(".lesson-link").first();
  const title = (await link.textContent()).trim();
  await link.click();
  await p.waitForSelector(".lesson-link[aria-current='true']");
  await p.locator("#lesson h1").filter({ hasText: title }).first().waitFor();
  expect((await p.locator("#lesson h1").count()) === 1, "the lesson shows more than one title");
  return title;
}

async function sendMessage(p, text) {
  await p.fill("#composer-input", text);
  await p.press("#composer-input", "Enter");
}

/** Polls `condition` (every 100 ms, up to TIMEOUT) for state outside the browser. */
async function waitUntil(condition, message) {
  const deadline = Date.now() + TIMEOUT;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(message);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const lastReply = (p) => p.locator(".message.assistant").last();

// ---------- tests ----------

test("the study page loads offline from the binary with no request to another origin", async () => {
  await openStudy(page);
  const count = await page.locator(".lesson-link").count();
  expect(count > 0, "the lesson tree is empty");
  expect(offOrigin.length === 0, `requests left the origin: ${offOrigin.join(", ")}`);
});

let threadId;
let threadTitle;
const threadRow = () => page.locator(`.thread[data-thread-id="${threadId}"]`);

test("a student picks a lesson, sends a message with Enter and sees the reply streamed", async () => {
  const title = await pickFirstLesson(page);
  const body = await page.locator("#lesson .lesson-body").textContent();
  expect(body.trim().length > 20, `the lesson body of "${title}" is empty`);

  const streamed = page.waitForResponse((r) => r.url().includes("/chatkit") && r.request().postData()?.includes("threads.create"));
  await sendMessage(page, "What is this lesson about?");
  const response = await streamed;
  expect(response.headers()["content-type"]?.startsWith("text/event-stream"), "the reply was not an event stream");

  await page.locator(".message.user").filter({ hasText: "What is this lesson about?" }).waitFor();
  await page.waitForSelector(".message.assistant[data-done='true']");
  const reply = (await lastReply(page).locator(".body").textContent()).trim();
  expect(reply.length > 0, "the reply is empty");
  const sse = (await response.body()).toString("utf8");
  const deltas = sse.split("assistant_message.content_part.text_delta").length - 1;
  expect(deltas >= 2, `the reply arrived in ${deltas} text deltas, not streamed`);
  await page.waitForSelector("#send:not([disabled])");
  await page.locator(".thread-open[aria-current='true']").waitFor();
  const current = page.locator(".thread", { has: page.locator(".thread-open[aria-current='true']") });
  threadId = await current.getAttribute("data-thread-id");
  threadTitle = (await current.locator(".thread-open").textContent()).trim();
  expect(threadId && threadTitle, "the new thread has no id or title in the history");
  await page.screenshot({ path: path.join(ARTIFACTS, "study-reply.png"), fullPage: true });
});

test("suggestion chips come from the server and a chip sends its text", async () => {
  const p = await context.newPage();
  try {
    await openStudy(p);
    await pickFirstLesson(p);
    const chip = p.locator("#suggestions .chip").first();
    await chip.waitFor();
    const text = (await chip.textContent()).trim();
    expect(text.length > 0, "an empty suggestion");
    await chip.click();
    await p.locator(".message.user", { hasText: text }).waitFor();
    await p.waitForSelector(".message.assistant[data-done='true']");
    await p.waitForSelector("#send:not([disabled])");
  } finally {
    await p.close();
  }
});

test("a thumbs up on a reply is recorded and shown as pressed", async () => {
  const up = lastReply(page).locator(".feedback button[data-kind='positive']");
  await up.click();
  await page.waitForSelector(".message.assistant .feedback button[data-kind='positive'][aria-pressed='true']");
  expect(await page.locator("#alert").isHidden(), "feedback showed an error");
});

test("after a reload the thread is in the lesson's history and reopens with its messages", async () => {
  await page.reload();
  await page.waitForSelector("body[data-ready='true']");
  await page.waitForSelector(".lesson-link[aria-current='true']");
  const row = threadRow().locator(".thread-open", { hasText: threadTitle });
  await row.waitFor();
  await row.click();
  await page.locator(".message.user").filter({ hasText: "What is this lesson about?" }).waitFor();
  await page.waitForSelector(".message.assistant[data-done='true']");
});

test("a thread can be renamed from the history by keyboard", async () => {
  await threadRow().locator(".thread-rename").focus();
  await page.keyboard.press("Enter");
  const input = page.locator(".rename-form input");
  await input.waitFor();
  await input.fill("Renamed by the browser test");
  await input.press("Enter");
  await threadRow().locator(".thread-open", { hasText: "Renamed by the browser test" }).waitFor();
  threadTitle = "Renamed by the browser test";
});

test("a deleted thread disappears from the history and stays gone after a reload", async () => {
  page.once("dialog", (dialog) => dialog.accept());
  await threadRow().locator(".thread-delete").click();
  await threadRow().waitFor({ state: "detached" });
  await page.reload();
  await page.waitForSelector(".lesson-link[aria-current='true']");
  await page.locator("#thread-list li").first().waitFor();
  expect((await threadRow().count()) === 0, "the deleted thread came back");
  const gone = await page.evaluate(async (id) => {
    const r = await fetch("/chatkit", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-User-ID": localStorage.getItem("study.userId") },
      body: JSON.stringify({ type: "threads.get_by_id", params: { thread_id: id } }),
    });
    return r.status;
  }, threadId);
  expect(gone === 404, `the deleted thread still answers ${gone}`);
});

test("the mode switch sends quiz as inference_options.model and the tutor quizzes", async () => {
  await page.click("#new-thread");
  await page.selectOption("#mode", "quiz");
  const request = page.waitForRequest((r) => r.url().includes("/chatkit") && r.postData()?.includes("threads.create"));
  await sendMessage(page, "Quiz me please");
  const body = JSON.parse((await request).postData());
  expect(body.params.input.inference_options.model === "quiz", `sent ${JSON.stringify(body.params.input.inference_options)}`);
  await page.locator(".message.user", { hasText: "Quiz me please" }).waitFor();
  await page.waitForSelector(".message.assistant[data-done='true']");
  await page.waitForSelector("#send:not([disabled])");
  const reply = await lastReply(page).locator(".body").textContent();
  expect(/Question 1 of \d+/.test(reply), `not a quiz reply: ${reply.slice(0, 120)}`);
  await page.selectOption("#mode", "teach");
});

test("a pasted bearer token is sent as Authorization instead of X-User-ID", async () => {
  await page.click("#identity summary");
  await page.fill("#token", "e2e-token-value");
  await page.press("#token", "Enter");
  await page.locator("#identity-summary", { hasText: "bearer token" }).waitFor();
  const request = page.waitForRequest((r) => r.url().includes("/chatkit") && r.postData()?.includes("threads.list"));
  await page.click("#new-thread");
  await page.locator(".lesson-link").first().click();
  const headers = (await request).headers();
  expect(headers.authorization === "Bearer e2e-token-value", `authorization: ${headers.authorization}`);
  expect(headers["x-user-id"] === undefined, "X-User-ID was sent with a token");
  await page.click("#identity summary");
  await page.fill("#token", "");
  await page.press("#token", "Enter");
  await page.locator("#identity-summary", { hasText: "e2e-student" }).waitFor();
});

test("every control has an accessible name and focus is visible", async () => {
  const unnamed = await page.evaluate(() =>
    [...document.querySelectorAll("button, input, select, textarea")]
      .filter((el) => !el.hidden && el.offsetParent !== null)
      .filter((el) => {
        const label = el.labels?.length ? el.labels[0].textContent : "";
        return !(el.getAttribute("aria-label") || label.trim() || (el.tagName === "BUTTON" && el.textContent.trim()));
      })
      .map((el) => el.outerHTML.slice(0, 80)));
  expect(unnamed.length === 0, `controls without a name: ${unnamed.join(" | ")}`);
  await page.focus("#composer-input");
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  expect(outline !== "none", "the focused composer shows no outline");
});

test("model text with HTML and script links is rendered as inert text", async () => {
  const result = await page.evaluate(async () => {
    const { renderMarkdown } = await import("/study/markdown.js");
    const box = document.createElement("div");
    box.append(renderMarkdown('<img src=x onerror="window.__xss=1"> **bold** [bad](javascript:alert(1)) [ok](https://example.org) <script>window.__xss=2</script>\n\n- one\n- two\n\n```\n<b>code</b>\n```'));
    return {
      img: box.querySelectorAll("img, script").length,
      links: [...box.querySelectorAll("a")].map((a) => a.getAttribute("href")),
      strong: box.querySelectorAll("strong").length,
      items: box.querySelectorAll("li").length,
      code: box.querySelector("pre code")?.textContent,
      text: box.textContent,
      xss: window.__xss ?? null,
    };
  });
  expect(result.img === 0, "an <img> or <script> element was created");
  expect(JSON.stringify(result.links) === JSON.stringify(["https://example.org"]), `unexpected links ${JSON.stringify(result.links)}`);
  expect(result.strong === 1 && result.items === 2, "bold or list items were not rendered");
  expect(result.code === "<b>code</b>", `code block was not literal: ${result.code}`);
  expect(result.text.includes("<img src=x"), "the HTML was dropped instead of shown as text");
  expect(result.xss === null, "injected script ran");
});

test("the SSE reader joins frames, CRLFs and UTF-8 characters split across network chunks", async () => {
  const results = await page.evaluate(async () => {
    const { readEvents } = await import("/study/sse.js");
    const bytes = new TextEncoder().encode('data: {"n":1,"t":"héllo 👋"}\n\n: comment\n\ndata: {"n":2}\r\n\r\ndata: {"n":\r\ndata: 3,"t":"ü"}\r\n\r\n');
    const parse = async (size) => {
      const stream = new ReadableStream({
        start(controller) {
          for (let i = 0; i < bytes.length; i += size) controller.enqueue(bytes.slice(i, i + size));
          controller.close();
        },
      });
      const out = [];
      for await (const event of readEvents(new Response(stream))) out.push(event);
      return out;
    };
    // Cuts of 1, 2, 3 and 7 bytes: frames, CRLF pairs and multi-byte characters all straddle.
    return Promise.all([1, 2, 3, 7, bytes.length].map(parse));
  });
  const expected = JSON.stringify([{ n: 1, t: "héllo 👋" }, { n: 2 }, { n: 3, t: "ü" }]);
  for (const events of results) expect(JSON.stringify(events) === expected, `parsed ${JSON.stringify(events)}`);
});

test("a missing lesson shows the server's error message", async () => {
  await page.goto(`${BASE_URL}/study#lesson=no-such-part/no-such-lesson`);
  await page.waitForSelector("body[data-ready='true']");
  await page.locator("#lesson", { hasText: "Could not load the lesson" }).waitFor();
  const text = await page.locator("#lesson").textContent();
  expect(text.includes("no-such-part/no-such-lesson"), `the message does not name the lesson: ${text}`);
});

test("the chat limit is shown with its Retry-After", async () => {
  const p = await context.newPage();
  try {
    await openStudy(p);
    await switchUser(p, `e2e-limit-${Date.now()}`);
    await pickFirstLesson(p);
    for (let i = 0; i < CHAT_LIMIT; i += 1) {
      await sendMessage(p, `question ${i}`);
      await p.locator(".message.user", { hasText: `question ${i}` }).waitFor();
      await p.waitForSelector("#send:not([disabled])");
    }
    await sendMessage(p, "one too many");
    const alert = p.locator("#alert", { hasText: "Too many requests" });
    await alert.waitFor();
    const text = await alert.textContent();
    expect(/Try again in \d+ s/.test(text), `no Retry-After in "${text}"`);
  } finally {
    await p.close();
  }
});

test("Stop aborts a streaming reply, the model request is dropped and the partial reply is kept", async () => {
  const slow = process.env.SLOW_BASE_URL;
  const model = process.env.MODEL_URL;
  expect(slow && model, "SLOW_BASE_URL and MODEL_URL are not set (run through scripts/test.d/50-browser.sh)");
  const stats = async () => (await fetch(`${model}/stats`)).json();
  const before = await stats();
  const p = await context.newPage();
  try {
    await p.goto(`${slow}/study`);
    await p.waitForSelector("#lesson-tree[data-state='ready'] .lesson-link");
    await pickFirstLesson(p);
    await sendMessage(p, "Tell me everything.");
    // The reply is visibly streaming: a few words are in, the Stop button is offered.
    await p.locator(".message.assistant[aria-busy='true'] .body", { hasText: "word3" }).waitFor();
    await p.click("#stop");
    await p.locator("#alert", { hasText: "Stopped." }).waitFor();
    await p.waitForSelector("#send:not([disabled])");
    expect(await p.locator("#stop").isHidden(), "the Stop button is still shown");
    const shown = (await p.locator(".message.assistant .body").last().textContent()).trim();
    // The server notices the disconnect and drops the upstream model request.
    await waitUntil(async () => (await stats()).closed_early > before.closed_early, "the model request was never closed");
    const after = await stats();
    expect(after.requests === before.requests + 1, `expected one model request, saw ${after.requests - before.requests}`);
    // The partial reply was saved: reopening the thread shows it, cut short.
    await p.reload();
    await p.waitForSelector(".lesson-link[aria-current='true']");
    await p.locator(".thread-open").first().click();
    const saved = p.locator(".message.assistant .body").last();
    await saved.waitFor();
    const text = (await saved.textContent()).trim();
    // Teach mode walks the lesson: the service's section header comes before the model's words.
    expect(text.includes("word1 word2 word3"), `the saved partial reply is "${text.slice(0, 120)}"`);
    expect(!text.includes("word600"), "the reply ran to the end despite Stop");
    expect(shown.length > 0, "nothing was shown before Stop");
  } finally {
    await p.close();
  }
});

test("the page fits a phone-width screen and the composer stays usable", async () => {
  const p = await context.newPage();
  await p.setViewportSize({ width: 390, height: 844 });
  try {
    await openStudy(p);
    await pickFirstLesson(p);
    const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow <= 1, `the page scrolls sideways by ${overflow}px`);
    await p.locator("#composer-input").scrollIntoViewIfNeeded();
    expect(await p.locator("#composer-input").isVisible(), "the composer is not visible");
    await p.screenshot({ path: path.join(ARTIFACTS, "study-phone.png"), fullPage: true });
  } finally {
    await p.close();
  }
});

/** Serves one empty page on ORIGIN_PORT for both 127.0.0.1 and localhost (two origins). */
async function startBookOrigin() {
  expect(ORIGIN_PORT > 0, "ORIGIN_PORT is not set (scripts/test.d/50-browser.sh sets it)");
  const server = http.createServer((_, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end("<!doctype html><title>lesson page</title><p>a lesson page of the book</p>");
  });
  // No host: both loopbacks (localhost may resolve to ::1).
  await new Promise((resolve) => server.listen(ORIGIN_PORT, resolve));
  return server;
}

/** The book panel's custom fetch: ChatKit's own headers plus the book's, JSON with a charset. */
async function panelFetch(p, base, userId) {
  return p.evaluate(async ({ base, userId }) => {
    const body = JSON.stringify({ type: "threads.create", params: { input: {
      content: [{ type: "input_text", text: "\u200B" }], attachments: [], inference_options: { model: "teach" } } } });
    try {
      const res = await fetch(`${base}/chatkit?user_id=${userId}&user_name=Ada&lesson_path=01-python-basics/02-control-flow/02-loops`, {
        method: "POST",
        credentials: "include",
        headers: {
          "Content-Type": "application/json; charset=utf-8",
          "chatkit-frame-instance-id": "frame-1",
          "chatkit-device-id": "device-1",
          "Accept-Language": "en-US",
          Authorization: "Bearer e2e.not.verified-in-dev-mode",
          "X-User-ID": userId,
          "X-User-Name": "Ada",
        },
        body,
      });
      return { status: res.status, text: await res.text() };
    } catch (error) {
      return { error: String(error) };
    }
  }, { base, userId });
}

test("the book's panel on another origin starts Teach through CORS with ChatKit's headers", async () => {
  const server = await startBookOrigin();
  const p = await context.newPage();
  try {
    await p.goto(`http://127.0.0.1:${ORIGIN_PORT}/`);
    const answer = await panelFetch(p, BASE_URL, `e2e-panel-${Date.now()}`);
    expect(!answer.error, `the browser refused the cross-origin request: ${answer.error}`);
    expect(answer.status === 200, `status ${answer.status}: ${answer.text}`);
    const events = answer.text.split("\n\n").filter((f) => f.startsWith("data: ")).map((f) => JSON.parse(f.slice(6)));
    expect(events[0]?.type === "thread.created", `first event: ${events[0]?.type}`);
    const shown = events.filter((e) => e.type === "thread.item.done" && e.item.type === "user_message");
    expect(shown.length === 0, "the start trigger was shown as a message");
    expect(events.some((e) => e.type === "thread.item.done" && e.item.type === "assistant_message"), "the tutor did not start");
    const title = events.filter((e) => e.type === "thread.updated").pop()?.thread?.title;
    expect(title === "📚 Repeating Work with Loops", `title: ${title}`);

    // The same page served as localhost is another origin, not listed: the browser blocks it.
    await p.goto(`http://localhost:${ORIGIN_PORT}/`);
    const foreign = await panelFetch(p, BASE_URL, `e2e-foreign-${Date.now()}`);
    expect(foreign.error?.includes("TypeError"), `a foreign origin was answered: ${JSON.stringify(foreign).slice(0, 200)}`);
  } finally {
    await p.close();
    server.close();
  }
});

test("the documentation page renders every path of /openapi.json", async () => {
  const doc = await (await fetch(`${BASE_URL}/openapi.json`)).json();
  await page.goto(`${BASE_URL}/docs`);
  await page.waitForSelector("body[data-ready='true']");
  const operations = Object.values(doc.paths).reduce((n, item) => n + Object.keys(item).length, 0);
  expect(await page.locator(".op").count() === operations, "not every operation is shown");
  await page.locator(".op", { hasText: "/chatkit" }).first().waitFor();
});

// ---------- runner ----------

async function main() {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "study-e2e-profile-"));
  // A persistent context on a fresh profile folder: playwright passes it as --user-data-dir.
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    timeout: 60_000,
    viewport: { width: 1280, height: 860 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  context.setDefaultTimeout(TIMEOUT);
  const student = `e2e-student-${Date.now()}`;
  await context.addInitScript((id) => {
    if (!localStorage.getItem("study.userId")) localStorage.setItem("study.userId", id);
  }, student);
  page = context.pages()[0] ?? (await context.newPage());
  const origin = new URL(BASE_URL).origin;
  page.on("request", (r) => {
    const url = new URL(r.url());
    if (!["data:", "blob:"].includes(url.protocol) && url.origin !== origin) offOrigin.push(r.url());
  });
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  // Failed fetches the tests provoke (404, 429) are logged by the browser; anything else — a
  // Content-Security-Policy violation above all — is a failure.
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) pageErrors.push(m.text());
  });

  let passed = 0;
  let failed = 0;
  for (const { name, fn } of tests) {
    try {
      await fn();
      passed += 1;
      console.log(`ok   - ${name}`);
    } catch (error) {
      failed += 1;
      console.log(`FAIL - ${name}\n       ${String(error?.message ?? error).split("\n").join("\n       ")}`);
      const file = `failure-${passed + failed}.png`;
      await page.screenshot({ path: path.join(ARTIFACTS, file), fullPage: true }).catch(() => {});
    }
  }
  if (pageErrors.length) {
    failed += 1;
    console.log(`FAIL - the page raised no script errors or CSP violations\n       ${pageErrors.join("\n       ")}`);
  }
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
  console.log(`browser e2e: ${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

main().catch((error) => {
  console.error(`browser e2e: could not run: ${error?.stack ?? error}`);
  console.log("browser e2e: 0 passed, 1 failed");
  process.exit(1);
});
