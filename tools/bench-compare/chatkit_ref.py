"""The reference ChatKit server of scripts/bench-chat-compare (benchmark only).

Owns: the Python `openai-chatkit` 1.6.5 server as its documentation shows it: a
`chatkit.server.ChatKitServer` subclass over an in-memory `Store`, served by FastAPI at
`POST /chatkit` (a `StreamingResult` as a `StreamingResponse` of `text/event-stream`, anything
else as JSON). `respond()` streams a scripted reply of ten words with the package's own event
types, in the order the package's Agents SDK bridge (`chatkit.agents.stream_agent_response`)
emits them for a model message: the assistant item added, its content part added, one text
delta per word, the part done, the item done; and it titles a new thread from the user's
message (a `thread.updated` event, as this service does).

Must not: be used for anything but that comparison. No auth, no model, no persistence: it can
only be faster than a deployed reference server, never slower.

The user is the `X-User-ID` header (as this service's dev mode); each uvicorn worker has its
own store (a turn is one request, so nothing is shared between workers).
"""

from collections import defaultdict
from datetime import datetime
from typing import Any, AsyncIterator

from chatkit.server import ChatKitServer, StreamingResult
from chatkit.store import NotFoundError, Store
from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageContentPartAdded,
    AssistantMessageContentPartDone,
    AssistantMessageContentPartTextDelta,
    AssistantMessageItem,
    Attachment,
    Page,
    ThreadItem,
    ThreadItemAddedEvent,
    ThreadItemDoneEvent,
    ThreadItemUpdatedEvent,
    ThreadMetadata,
    ThreadStreamEvent,
    UserMessageItem,
)
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse

REPLY = "Good question: a closure captures variables from its enclosing scope."
Context = dict[str, Any]


def _page(items: list, after: str | None, limit: int, order: str) -> Page:
    """A page of `items` (oldest first) after the id `after`, in `order`."""
    ordered = items if order == "asc" else list(reversed(items))
    start = 0
    if after is not None:
        ids = [i.id for i in ordered]
        start = ids.index(after) + 1 if after in ids else len(ordered)
    data = ordered[start : start + limit]
    has_more = start + limit < len(ordered)
    return Page(data=data, has_more=has_more, after=data[-1].id if has_more and data else None)


class MemoryStore(Store[Context]):
    """Threads, items and attachments in dictionaries; threads scoped to their user."""

    def __init__(self) -> None:
        self.threads: dict[str, ThreadMetadata] = {}
        self.owners: dict[str, str] = {}
        self.items: dict[str, list[ThreadItem]] = defaultdict(list)
        self.attachments: dict[str, Attachment] = {}

    def _thread(self, thread_id: str, context: Context) -> ThreadMetadata:
        thread = self.threads.get(thread_id)
        if thread is None or self.owners.get(thread_id) != context["user_id"]:
            raise NotFoundError(f"Thread {thread_id} not found")
        return thread

    async def load_thread(self, thread_id: str, context: Context) -> ThreadMetadata:
        return self._thread(thread_id, context).model_copy(deep=True)

    async def save_thread(self, thread: ThreadMetadata, context: Context) -> None:
        self.threads[thread.id] = thread.model_copy(deep=True)
        self.owners.setdefault(thread.id, context["user_id"])

    async def load_threads(
        self, limit: int, after: str | None, order: str, context: Context
    ) -> Page[ThreadMetadata]:
        mine = [t for i, t in self.threads.items() if self.owners.get(i) == context["user_id"]]
        mine.sort(key=lambda t: t.created_at)
        return _page(mine, after, limit, order)

    async def delete_thread(self, thread_id: str, context: Context) -> None:
        self._thread(thread_id, context)
        self.threads.pop(thread_id, None)
        self.owners.pop(thread_id, None)
        self.items.pop(thread_id, None)

    async def load_thread_items(
        self, thread_id: str, after: str | None, limit: int, order: str, context: Context
    ) -> Page[ThreadItem]:
        self._thread(thread_id, context)
        return _page(self.items[thread_id], after, limit, order)

    async def add_thread_item(self, thread_id: str, item: ThreadItem, context: Context) -> None:
        self._thread(thread_id, context)
        self.items[thread_id].append(item.model_copy(deep=True))

    async def save_item(self, thread_id: str, item: ThreadItem, context: Context) -> None:
        self._thread(thread_id, context)
        items = self.items[thread_id]
        for i, existing in enumerate(items):
            if existing.id == item.id:
                items[i] = item.model_copy(deep=True)
                return
        items.append(item.model_copy(deep=True))

    async def load_item(self, thread_id: str, item_id: str, context: Context) -> ThreadItem:
        self._thread(thread_id, context)
        for item in self.items[thread_id]:
            if item.id == item_id:
                return item.model_copy(deep=True)
        raise NotFoundError(f"Item {item_id} not found")

    async def delete_thread_item(self, thread_id: str, item_id: str, context: Context) -> None:
        self._thread(thread_id, context)
        self.items[thread_id] = [i for i in self.items[thread_id] if i.id != item_id]

    async def save_attachment(self, attachment: Attachment, context: Context) -> None:
        self.attachments[attachment.id] = attachment.model_copy(deep=True)

    async def load_attachment(self, attachment_id: str, context: Context) -> Attachment:
        if attachment_id not in self.attachments:
            raise NotFoundError(f"Attachment {attachment_id} not found")
        return self.attachments[attachment_id].model_copy(deep=True)

    async def delete_attachment(self, attachment_id: str, context: Context) -> None:
        self.attachments.pop(attachment_id, None)


class ScriptedServer(ChatKitServer[Context]):
    """Answers every user message with the same ten words, streamed one word per delta."""

    async def respond(
        self,
        thread: ThreadMetadata,
        input_user_message: UserMessageItem | None,
        context: Context,
    ) -> AsyncIterator[ThreadStreamEvent]:
        if input_user_message is None:
            return
        item_id = self.store.generate_item_id("message", thread, context)
        item = AssistantMessageItem(
            id=item_id, thread_id=thread.id, created_at=datetime.now(), content=[]
        )
        yield ThreadItemAddedEvent(item=item)
        yield ThreadItemUpdatedEvent(
            item_id=item_id,
            update=AssistantMessageContentPartAdded(
                content_index=0, content=AssistantMessageContent(text="", annotations=[])
            ),
        )
        words = REPLY.split(" ")
        for i, word in enumerate(words):
            yield ThreadItemUpdatedEvent(
                item_id=item_id,
                update=AssistantMessageContentPartTextDelta(
                    content_index=0, delta=word if i == 0 else " " + word
                ),
            )
        content = AssistantMessageContent(text=REPLY, annotations=[])
        yield ThreadItemUpdatedEvent(
            item_id=item_id,
            update=AssistantMessageContentPartDone(content_index=0, content=content),
        )
        yield ThreadItemDoneEvent(item=item.model_copy(update={"content": [content]}))
        if not thread.title:
            text = " ".join(c.text for c in input_user_message.content if c.type == "input_text")
            thread.title = text[:50]


app = FastAPI()
server = ScriptedServer(MemoryStore())


@app.post("/chatkit")
async def chatkit_endpoint(request: Request) -> Response:
    context = {"user_id": request.headers.get("x-user-id", "anonymous")}
    result = await server.process(await request.body(), context)
    if isinstance(result, StreamingResult):
        return StreamingResponse(result, media_type="text/event-stream")
    return Response(content=result.json, media_type="application/json")


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
