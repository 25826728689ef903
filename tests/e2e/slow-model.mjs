// A slow OpenAI-compatible model server for the Stop-button test: `POST /v1/responses` streams
// the Responses API's SSE events, one short text delta every 100 ms for up to a minute, so a
// reply is still streaming when the page's Stop button is pressed. `GET /stats` reports how many
// replies were requested and how many the client closed before the end.
//
// Usage: node slow-model.mjs <port-file>   (listens on a free port and writes it there)

import http from "node:http";
import fs from "node:fs";

const stats = { requests: 0, closed_early: 0 };

function send(res, event) {
  res.write(`event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
}

function respond(req, res) {
  stats.requests += 1;
  res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
  send(res, { type: "response.created", response: { id: "resp_e2e", status: "in_progress" } });
  send(res, { type: "response.content_part.added", part: { type: "output_text", text: "" } });
  let n = 0;
  let finished = false;
  const timer = setInterval(() => {
    n += 1;
    send(res, { type: "response.output_text.delta", delta: `word${n} ` });
    if (n >= 600) {
      finished = true;
      clearInterval(timer);
      send(res, { type: "response.completed", response: { usage: { input_tokens: 1, output_tokens: n } } });
      res.end();
    }
  }, 100);
  res.on("close", () => {
    clearInterval(timer);
    if (!finished) stats.closed_early += 1;
  });
}

const server = http.createServer((req, res) => {
  if (req.method === "POST" && req.url.endsWith("/responses")) {
    req.resume();
    req.on("end", () => respond(req, res));
  } else if (req.url === "/stats") {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify(stats));
  } else {
    res.writeHead(404, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ error: { message: "not found", type: "invalid_request_error" } }));
  }
});

server.listen(0, "127.0.0.1", () => {
  fs.writeFileSync(process.argv[2], String(server.address().port));
});
