// The Node peer of scripts/bench-chat-compare (benchmark only): a ChatKit server on the npm
// package `chatkit-node-backend-sdk` 1.1.2, as its README shows it (a `ChatKitServer` subclass
// over a `Store`, `server.process()` per POST, a streaming result written chunk by chunk as
// `text/event-stream`), with the same in-memory store and scripted reply as
// tools/bench-compare/chatkit_ref.py: the assistant item added, its content part added, one
// text delta per word of ten, the part done, the item done, and a title for a new thread.
// Served by node:http (no framework: nothing between the SDK and the socket).
//
// Must not: be used for anything but that comparison. No auth, no model, no persistence.
//
// usage: node server.js [--port 8000] [--host 127.0.0.1] [--workers N]
//   --workers N > 1: node:cluster, N worker processes sharing the port (the primary only
//   forwards connections); each worker has its own store (a turn is one request).
// The SDK's `info` log line per request goes to a silent logger (this service logs no line per
// request either); the SDK also prints a fixed `console.log` per threads.create, which the
// benchmark script sends to /dev/null.
import cluster from 'node:cluster';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { ChatKitServer, Store, StoreNotFoundError } from 'chatkit-node-backend-sdk';

const REPLY = 'Good question: a closure captures variables from its enclosing scope.';

const { values: opts } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.PORT ?? '8000' },
    host: { type: 'string', default: '127.0.0.1' },
    workers: { type: 'string', default: '1' },
  },
});
const workers = Number.parseInt(opts.workers, 10);

/** A page of `items` (oldest first) after the id `after`, in `order`. */
function page(items, after, limit, order) {
  const ordered = order === 'asc' ? items : [...items].reverse();
  let start = 0;
  if (after !== null && after !== undefined) {
    const i = ordered.findIndex((x) => x.id === after);
    start = i >= 0 ? i + 1 : ordered.length;
  }
  const data = ordered.slice(start, start + limit);
  const hasMore = start + limit < ordered.length;
  return { data, has_more: hasMore, after: hasMore && data.length ? data[data.length - 1].id : null };
}

const copy = (x) => structuredClone(x);

/** Threads, items and attachments in maps; threads scoped to their user. */
class MemoryStore extends Store {
  threads = new Map();
  owners = new Map();
  items = new Map();
  attachments = new Map();

  thread(threadId, context) {
    const t = this.threads.get(threadId);
    if (!t || this.owners.get(threadId) !== context.userId) {
      throw new StoreNotFoundError(`Thread ${threadId} not found`);
    }
    return t;
  }

  async loadThread(threadId, context) {
    return copy(this.thread(threadId, context));
  }

  async saveThread(thread, context) {
    this.threads.set(thread.id, copy(thread));
    if (!this.owners.has(thread.id)) this.owners.set(thread.id, context.userId);
  }

  async deleteThread(threadId, context) {
    this.thread(threadId, context);
    this.threads.delete(threadId);
    this.owners.delete(threadId);
    this.items.delete(threadId);
  }

  async loadThreads(limit, after, order, context) {
    const mine = [...this.threads.values()]
      .filter((t) => this.owners.get(t.id) === context.userId)
      .sort((a, b) => a.created_at.localeCompare(b.created_at));
    return page(mine, after, limit, order);
  }

  async loadThreadItems(threadId, after, limit, order, context) {
    this.thread(threadId, context);
    return page(this.items.get(threadId) ?? [], after, limit, order);
  }

  async addThreadItem(threadId, item, context) {
    this.thread(threadId, context);
    if (!this.items.has(threadId)) this.items.set(threadId, []);
    this.items.get(threadId).push(copy(item));
  }

  async saveItem(threadId, item, context) {
    this.thread(threadId, context);
    if (!this.items.has(threadId)) this.items.set(threadId, []);
    const items = this.items.get(threadId);
    const i = items.findIndex((x) => x.id === item.id);
    if (i >= 0) items[i] = copy(item);
    else items.push(copy(item));
  }

  async loadItem(threadId, itemId, context) {
    this.thread(threadId, context);
    const item = (this.items.get(threadId) ?? []).find((x) => x.id === itemId);
    if (!item) throw new StoreNotFoundError(`Item ${itemId} not found`);
    return copy(item);
  }

  async deleteThreadItem(threadId, itemId, context) {
    this.thread(threadId, context);
    this.items.set(threadId, (this.items.get(threadId) ?? []).filter((x) => x.id !== itemId));
  }

  async saveAttachment(attachment, _context) {
    this.attachments.set(attachment.id, copy(attachment));
  }

  async loadAttachment(attachmentId, _context) {
    const a = this.attachments.get(attachmentId);
    if (!a) throw new StoreNotFoundError(`Attachment ${attachmentId} not found`);
    return copy(a);
  }

  async deleteAttachment(attachmentId, _context) {
    this.attachments.delete(attachmentId);
  }
}

/** Answers every user message with the same ten words, streamed one word per delta. */
class ScriptedServer extends ChatKitServer {
  async *respond(thread, inputUserMessage, context) {
    if (!inputUserMessage) return;
    const itemId = this.store.generateItemId('message', thread, context);
    const item = {
      type: 'assistant_message',
      id: itemId,
      thread_id: thread.id,
      created_at: new Date().toISOString(),
      content: [],
    };
    yield { type: 'thread.item.added', item };
    yield {
      type: 'thread.item.updated',
      item_id: itemId,
      update: {
        type: 'assistant_message.content_part.added',
        content_index: 0,
        content: { type: 'output_text', text: '', annotations: [] },
      },
    };
    const words = REPLY.split(' ');
    for (let i = 0; i < words.length; i++) {
      yield {
        type: 'thread.item.updated',
        item_id: itemId,
        update: {
          type: 'assistant_message.content_part.text_delta',
          content_index: 0,
          delta: i === 0 ? words[i] : ` ${words[i]}`,
        },
      };
    }
    const content = { type: 'output_text', text: REPLY, annotations: [] };
    yield {
      type: 'thread.item.updated',
      item_id: itemId,
      update: { type: 'assistant_message.content_part.done', content_index: 0, content },
    };
    yield { type: 'thread.item.done', item: { ...item, content: [content] } };
    if (!thread.title) {
      const text = inputUserMessage.content
        .filter((c) => c.type === 'input_text')
        .map((c) => c.text)
        .join(' ');
      thread.title = text.slice(0, 50);
    }
  }
}

const quiet = { info() {}, debug() {}, warn: console.warn, error: console.error };

function serve() {
  const chatkit = new ScriptedServer(new MemoryStore(), undefined, quiet);
  const server = http.createServer(async (req, res) => {
    try {
      if (req.method === 'GET' && req.url === '/health') {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end('{"status":"ok"}');
        return;
      }
      if (req.method !== 'POST' || req.url !== '/chatkit') {
        res.writeHead(404);
        res.end();
        return;
      }
      const chunks = [];
      for await (const chunk of req) chunks.push(chunk);
      const context = { userId: req.headers['x-user-id'] ?? 'anonymous' };
      const result = await chatkit.process(Buffer.concat(chunks), context);
      if (result.isStreaming) {
        res.writeHead(200, {
          'Content-Type': 'text/event-stream',
          'Cache-Control': 'no-cache',
        });
        for await (const chunk of result) res.write(chunk);
        res.end();
      } else {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(result.toJSON()));
      }
    } catch (error) {
      console.error(error);
      if (!res.headersSent) res.writeHead(500);
      res.end();
    }
  });
  // As uvicorn --timeout-keep-alive 75: no idle connection is closed under the load tool.
  server.keepAliveTimeout = 75_000;
  server.listen(Number.parseInt(opts.port, 10), opts.host);
}

if (workers > 1 && cluster.isPrimary) {
  for (let i = 0; i < workers; i++) cluster.fork();
  cluster.on('exit', (worker, code, signal) => {
    if (!process.exitCode) console.error(`worker ${worker.process.pid} exited (${signal ?? code})`);
  });
  const stop = () => {
    process.exitCode = 0;
    for (const w of Object.values(cluster.workers)) w.kill('SIGTERM');
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  serve();
}
