"""Conformance oracle for POST /chatkit, built on the reference package openai-chatkit 1.6.5.

Run by tests/api/chatkit/conformance.rs (and the other chatkit tests) as a long-lived child:
one JSON command per stdin line, one JSON answer per stdout line.

Commands:
  {"cmd": "request", "body": "<raw request body>", "valid": true|false}
      The body must (or must not) validate as ChatKitReq.
  {"cmd": "response", "request_type": "...", "body": "<raw response body>"}
      Streaming types: SSE framing + every frame a ThreadStreamEvent + round trip.
      threads.get_by_id/update: Thread; threads.list: Page[Thread]; items.list:
      Page[ThreadItem]; threads.delete/items.feedback: exactly {}.
  {"cmd": "differential", "scenario": [...], "ours": [...]}
      Runs the scenario through the real chatkit.server.ChatKitServer with a scripted respond
      that reproduces src/chatkit/echo.rs, normalises both transcripts and compares them.
Answer: {"ok": bool, "problems": [str, ...]}.

The round trip (validate, dump with exclude_none/by_alias, compare with the input after
dropping nulls) catches extra, misspelt and wrongly defaulted fields that validation alone
ignores.
"""

import asyncio
import json
import sys
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from chatkit.server import ChatKitServer, NonStreamingResult, StreamingResult
from chatkit.store import NotFoundError, Store
from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageContentPartAdded,
    AssistantMessageContentPartDone,
    AssistantMessageContentPartTextDelta,
    AssistantMessageItem,
    ChatKitReq,
    Page,
    Thread,
    ThreadItem,
    ThreadItemAddedEvent,
    ThreadItemDoneEvent,
    ThreadItemUpdatedEvent,
    ThreadMetadata,
    ThreadStreamEvent,
)

REQ = TypeAdapter(ChatKitReq)
EVT = TypeAdapter(ThreadStreamEvent)
BODIES = {
    "threads.get_by_id": TypeAdapter(Thread),
    "threads.update": TypeAdapter(Thread),
    "threads.list": TypeAdapter(Page[Thread]),
    "items.list": TypeAdapter(Page[ThreadItem]),
}
EMPTY_BODIES = {"threads.delete", "items.feedback"}
STREAMING = {
    "threads.create",
    "threads.add_user_message",
    "threads.add_client_tool_output",
    "threads.add_structured_input",
    "threads.retry_after_item",
    "threads.custom_action",
}


def norm(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: norm(v) for k, v in x.items() if v is not None}
    if isinstance(x, list):
        return [norm(v) for v in x]
    return x


def round_trip(adapter: TypeAdapter, raw: Any, where: str) -> list[str]:
    try:
        parsed = adapter.validate_python(raw)
    except ValidationError as e:
        return [f"{where}: invalid: {e.errors()[0]}"]
    dumped = json.loads(adapter.dump_json(parsed, exclude_none=True, by_alias=True))
    if norm(dumped) != norm(raw):
        return [f"{where}: round-trip mismatch (extra, misspelt or omitted-default fields)\n"
                f"  sent:     {json.dumps(norm(raw), sort_keys=True)}\n"
                f"  pydantic: {json.dumps(norm(dumped), sort_keys=True)}"]
    return []


def check_sse(body: bytes) -> list[str]:
    problems: list[str] = []
    frames = body.split(b"\n\n")
    if frames[-1] != b"":
        problems.append("body must end with a blank line")
    if len(frames) < 2:
        problems.append("stream has no events")
    for i, f in enumerate(frames[:-1]):
        if f.startswith(b":") and b"\n" not in f:
            continue  # a comment (our keep-alive): legal SSE, ignored by every SSE parser
        if not f.startswith(b"data: ") or b"\n" in f:
            problems.append(f"frame {i}: not a single data line: {f[:80]!r}")
            continue
        try:
            raw = json.loads(f[6:])
        except ValueError as e:
            problems.append(f"frame {i}: not JSON: {e}")
            continue
        if f[6:] != json.dumps(raw, separators=(",", ":"), ensure_ascii=False).encode():
            problems.append(f"frame {i}: JSON is not compact")
        problems += round_trip(EVT, raw, f"frame {i}")
    return problems


def check_request(body: str, valid: bool) -> list[str]:
    try:
        REQ.validate_json(body)
        return [] if valid else [f"the reference accepts a request the test calls invalid: {body}"]
    except ValidationError as e:
        return [f"the reference rejects the request: {e.errors()[0]}: {body}"] if valid else []


def check_response(request_type: str, body: str) -> list[str]:
    raw = body.encode()
    if request_type in STREAMING:
        return check_sse(raw)
    if request_type in EMPTY_BODIES:
        return [] if raw == b"{}" else [f"{request_type}: expected {{}}, got {body[:200]}"]
    adapter = BODIES.get(request_type)
    if adapter is None:
        return [f"{request_type}: no reference body type to check"]
    return round_trip(adapter, json.loads(raw), request_type)


# ---------------------------------------------------------------- differential


class MemoryStore(Store[dict]):
    """In-memory store that keeps ThreadMetadata only (avoids the reference's quirk 13.1)."""

    def __init__(self) -> None:
        self.threads: dict[str, ThreadMetadata] = {}
        self.items: dict[str, list[ThreadItem]] = {}

    async def load_thread(self, thread_id, context):
        if thread_id not in self.threads:
            raise NotFoundError(thread_id)
        return self.threads[thread_id].model_copy(deep=True)

    async def save_thread(self, thread, context):
        data = thread.model_dump()
        data.pop("items", None)
        self.threads[thread.id] = ThreadMetadata(**data)

    @staticmethod
    def _page(rows, after, limit, order, key):
        rows = sorted(rows, key=key, reverse=(order == "desc"))
        if after:
            ids = [r.id for r in rows]
            rows = rows[ids.index(after) + 1:] if after in ids else []
        return Page(data=rows[:limit], has_more=len(rows) > limit,
                    after=rows[limit - 1].id if len(rows) > limit else None)

    async def load_thread_items(self, thread_id, after, limit, order, context):
        return self._page(self.items.get(thread_id, []), after, limit, order,
                          lambda i: (i.created_at, i.id))

    async def load_threads(self, limit, after, order, context):
        return self._page(list(self.threads.values()), after, limit, order,
                          lambda t: (t.created_at, t.id))

    async def add_thread_item(self, thread_id, item, context):
        self.items.setdefault(thread_id, []).append(item)

    async def save_item(self, thread_id, item, context):
        rows = self.items.setdefault(thread_id, [])
        for i, existing in enumerate(rows):
            if existing.id == item.id:
                rows[i] = item
                return
        rows.append(item)

    async def load_item(self, thread_id, item_id, context):
        for item in self.items.get(thread_id, []):
            if item.id == item_id:
                return item
        raise NotFoundError(item_id)

    async def delete_thread(self, thread_id, context):
        self.threads.pop(thread_id, None)
        self.items.pop(thread_id, None)

    async def delete_thread_item(self, thread_id, item_id, context):
        self.items[thread_id] = [i for i in self.items.get(thread_id, []) if i.id != item_id]

    async def save_attachment(self, attachment, context):
        raise NotImplementedError

    async def load_attachment(self, attachment_id, context):
        raise NotFoundError(attachment_id)

    async def delete_attachment(self, attachment_id, context):
        raise NotImplementedError


def split_inclusive(text: str) -> list[str]:
    """Rust's str::split_inclusive(' ')."""
    out, cur = [], ""
    for ch in text:
        cur += ch
        if ch == " ":
            out.append(cur)
            cur = ""
    if cur:
        out.append(cur)
    return out


class EchoServer(ChatKitServer[dict]):
    """The reference server with a respond() scripted to emit what EchoResponder emits."""

    async def respond(self, thread, input_user_message, context):
        message = (" ".join(c.text for c in input_user_message.content)
                   if input_user_message else None)
        needs_title = thread.title is None
        parts = [f"You said: {message}" if message is not None else "Let's start.",
                 "What would you like to explore next?"]
        item_id = self.store.generate_item_id("message", thread, context)
        created = datetime.now()
        yield ThreadItemAddedEvent(item=AssistantMessageItem(
            id=item_id, thread_id=thread.id, created_at=created, content=[]))
        for i, part in enumerate(parts):
            if i > 0:
                yield ThreadItemUpdatedEvent(item_id=item_id, update=AssistantMessageContentPartDone(
                    content_index=i - 1, content=AssistantMessageContent(text=parts[i - 1])))
            yield ThreadItemUpdatedEvent(item_id=item_id, update=AssistantMessageContentPartAdded(
                content_index=i, content=AssistantMessageContent(text="")))
            for delta in split_inclusive(part):
                yield ThreadItemUpdatedEvent(item_id=item_id, update=AssistantMessageContentPartTextDelta(
                    content_index=i, delta=delta))
        yield ThreadItemUpdatedEvent(item_id=item_id, update=AssistantMessageContentPartDone(
            content_index=len(parts) - 1, content=AssistantMessageContent(text=parts[-1])))
        yield ThreadItemDoneEvent(item=AssistantMessageItem(
            id=item_id, thread_id=thread.id, created_at=created,
            content=[AssistantMessageContent(text=p) for p in parts]))
        if needs_title and message and message.split():
            thread.title = " ".join(message.split()[:6])


ID_KEYS = {"id", "thread_id", "item_id", "after"}


def normalise(value: Any, ids: dict[str, str]) -> Any:
    """Ids become <id1>, <id2>… by first appearance; timestamps become <ts>."""
    def name(raw: str) -> str:
        return ids.setdefault(raw, f"<id{len(ids) + 1}>")

    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in ID_KEYS and isinstance(v, str):
                out[k] = name(v)
            elif k == "item_ids" and isinstance(v, list):
                out[k] = [name(x) for x in v]
            elif k == "created_at":
                out[k] = "<ts>"
            else:
                out[k] = normalise(v, ids)
        return out
    if isinstance(value, list):
        return [normalise(v, ids) for v in value]
    return value


def substitute(value: Any, symbols: dict[str, str]) -> Any:
    if isinstance(value, str) and value.startswith("$"):
        return symbols[value[1:]]
    if isinstance(value, dict):
        return {k: substitute(v, symbols) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, symbols) for v in value]
    return value


def learn(symbols: dict[str, str], answer: Any) -> None:
    """Same rules as the Rust side: $thread, $userN, $after."""
    events = answer if isinstance(answer, list) else []
    for e in events:
        if e.get("type") == "thread.created" and "thread" not in symbols:
            symbols["thread"] = e["thread"]["id"]
        if e.get("type") == "thread.item.done" and e["item"]["type"] == "user_message":
            n = sum(1 for k in symbols if k.startswith("user"))
            symbols[f"user{n}"] = e["item"]["id"]
    if isinstance(answer, dict) and answer.get("after"):
        symbols["after"] = answer["after"]


async def run_reference(scenario: list[dict]) -> list[Any]:
    server = EchoServer(MemoryStore())
    symbols: dict[str, str] = {}
    transcript = []
    for step in scenario:
        body = json.dumps(substitute(step["request"], symbols)).encode()
        result = await server.process(body, {})
        if isinstance(result, StreamingResult):
            raw = b"".join([chunk async for chunk in result])
            answer = [json.loads(f[6:]) for f in raw.split(b"\n\n") if f]
        else:
            assert isinstance(result, NonStreamingResult)
            answer = json.loads(result.json)
        learn(symbols, answer)
        transcript.append(answer)
    return transcript


def drop_ignored(scenario: list[dict], transcript: list[Any]) -> list[Any]:
    out = []
    for step, answer in zip(scenario, transcript):
        ignored = set(step.get("ignore_events", []))
        if isinstance(answer, list):
            answer = [e for e in answer if e.get("type") not in ignored]
        out.append(answer)
    return out


def differential(scenario: list[dict], ours: list[Any]) -> list[str]:
    if len(ours) != len(scenario):
        return [f"ours has {len(ours)} answers for {len(scenario)} steps"]
    reference = asyncio.run(run_reference(scenario))
    theirs_n = normalise(drop_ignored(scenario, reference), {})
    ours_n = normalise(drop_ignored(scenario, ours), {})
    problems = []
    for step, a, b in zip(scenario, ours_n, theirs_n):
        if a != b:
            problems.append(f"step {step['name']!r} differs\n  ours:      {json.dumps(a)}\n"
                            f"  reference: {json.dumps(b)}")
    return problems


def handle(command: dict) -> list[str]:
    cmd = command.get("cmd")
    if cmd == "request":
        return check_request(command["body"], command.get("valid", True))
    if cmd == "response":
        return check_response(command["request_type"], command["body"])
    if cmd == "differential":
        return differential(command["scenario"], command["ours"])
    return [f"unknown command {cmd!r}"]


def main() -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            problems = handle(json.loads(line))
        except Exception as e:  # report, never die: the test shows the message
            problems = [f"oracle error: {type(e).__name__}: {e}"]
        sys.stdout.write(json.dumps({"ok": not problems, "problems": problems}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
