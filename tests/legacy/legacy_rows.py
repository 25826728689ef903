"""Rows of the Python study-mode service's store, serialised by the reference `openai-chatkit`
types exactly as that service wrote them (pydantic `model_dump_json` of its `ThreadData` /
`ItemData` wrappers in the current layout; the bare item, and the thread's fields but `id` and
`title`, in the older one). Used by tests/api/legacy/ and scripts/bench-import-legacy.

usage: legacy_rows.py fixture   -> one JSON document {"threads": [...], "items": [...]} on stdout
       legacy_rows.py templates -> a few item/thread templates for the bulk benchmark
Each row carries both encodings: "data" (current layout) and "data_older".
"""

import json
import sys
from datetime import datetime, timedelta, timezone

from pydantic import BaseModel, TypeAdapter

from chatkit.types import (
    ActiveStatus,
    AssistantMessageContent,
    AssistantMessageItem,
    InferenceOptions,
    ThreadItem,
    ThreadMetadata,
    UserMessageItem,
    UserMessageTextContent,
)


class ThreadData(BaseModel):
    thread: ThreadMetadata


class ItemData(BaseModel):
    item: ThreadItem


ITEM = TypeAdapter(ThreadItem)
T0 = datetime(2025, 11, 3, 9, 15, 0, 123456, tzinfo=timezone.utc)


def thread(tid, user, title, lesson, at, org="panaversity-default-org-id", metadata=None):
    meta = ThreadMetadata(id=tid, title=title, created_at=at, status=ActiveStatus(),
                          metadata=metadata or {})
    older = json.loads(meta.model_dump_json())
    older.pop("id")
    older.pop("title")
    return {"id": tid, "user_id": user, "organization_id": org, "lesson_path": lesson,
            "title": title, "created_at": at.isoformat(), "updated_at": at.isoformat(),
            "data": ThreadData(thread=meta).model_dump_json(), "data_older": json.dumps(older)}


def user_msg(iid, tid, text, at, model="teach", quoted=None):
    return UserMessageItem(id=iid, thread_id=tid, created_at=at,
                           content=[UserMessageTextContent(text=text)], attachments=[],
                           quoted_text=quoted,
                           inference_options=InferenceOptions(model=model, tool_choice=None))


def reply(iid, tid, text, at):
    return AssistantMessageItem(id=iid, thread_id=tid, created_at=at,
                                content=[AssistantMessageContent(text=text, annotations=[])])


def item_row(item, user, org="panaversity-default-org-id", thread_id=None):
    return {"id": item.id, "thread_id": thread_id or item.thread_id, "user_id": user,
            "organization_id": org, "created_at": item.created_at.isoformat(),
            "updated_at": item.created_at.isoformat(),
            "data": ItemData(item=item).model_dump_json(),
            "data_older": ITEM.dump_json(item).decode()}


def raw_item(iid, tid, user, at, data):
    return {"id": iid, "thread_id": tid, "user_id": user,
            "organization_id": "panaversity-default-org-id", "created_at": at.isoformat(),
            "updated_at": at.isoformat(), "data": json.dumps({"item": data}),
            "data_older": json.dumps(data)}


def fixture():
    s = timedelta(seconds=1)
    us = timedelta(microseconds=1)
    lesson = "01-General-Agents-Foundations/01-agent-factory-paradigm/01-the-2025-inflection-point"
    threads = [
        thread("thr_alice_1", "alice", "Study Session", lesson, T0),
        thread("thr_alice_2", "alice", "Study Session", "", T0 + 10 * s),  # no items
        thread("thr_alice_3", "alice", "Über «Agenten» — \"quotes\" & 'apostrophes' 🤖\n" + "x" * 300,
               lesson, T0 + 20 * s, metadata={"lesson_path": lesson, "mode": "ask"}),
        thread("thr_bob_1", "bob", "📚 The 2025 Inflection Point", lesson, T0 + 5 * s, org=None),
        # Unreadable: a status the reference never writes.
        dict(thread("thr_broken", "bob", "Study Session", lesson, T0 + 30 * s),
             data=json.dumps({"thread": {"id": "thr_broken", "status": "open"}}),
             data_older=json.dumps({"status": "open"})),
    ]
    items = [
        item_row(user_msg("msg_a1_1", "thr_alice_1", "Was ist ein „Agent“? Erklär's mir — 🦀 \"bitte\"", T0 + us), "alice"),
        item_row(reply("msg_a1_2", "thr_alice_1", "**Agents** act; they don't just *answer*.\n\n> 'quoted'", T0 + 2 * us), "alice"),
        item_row(user_msg("msg_a1_3", "thr_alice_1", "And 中文?", T0 + 3 * us, model="ask",
                          quoted="the 2025 inflection point"), "alice"),
        item_row(user_msg("msg_a3_1", "thr_alice_3", "Quick question", T0 + 21 * s, model="ask"), "alice"),
        item_row(reply("msg_a3_2", "thr_alice_3", "Quick answer.", T0 + 22 * s), "alice"),
        item_row(user_msg("msg_b1_1", "thr_bob_1", "hello", T0 + 6 * s), "bob"),
        item_row(reply("msg_b1_2", "thr_bob_1", "Hi Bob!", T0 + 7 * s), "bob"),
        # The old service's left-over start trigger (it deleted them afterwards, not always).
        item_row(user_msg("msg_b1_0", "thr_bob_1", "\u200b", T0 + 5 * s + us), "bob"),
        # An item whose thread is missing.
        item_row(reply("msg_orphan", "thr_gone", "lost", T0 + 40 * s), "bob"),
        # An item of alice's pointing at bob's thread.
        item_row(reply("msg_wrong_user", "thr_bob_1", "not mine", T0 + 8 * s), "alice"),
        # An item of the unreadable thread.
        item_row(reply("msg_broken_1", "thr_broken", "orphaned by a skipped thread", T0 + 31 * s), "bob"),
        # Not a ChatKit item.
        raw_item("msg_bad", "thr_alice_1", "alice", T0 + 4 * us,
                 {"id": "msg_bad", "thread_id": "thr_alice_1", "created_at": T0.isoformat(),
                  "type": "user_message", "content": "not a list", "inference_options": {}}),
    ]
    return {"threads": threads, "items": items}


def templates():
    at = T0
    t = thread("THREAD", "USER", "Study Session", "01-part/01-chapter/01-lesson", at)
    items = [
        item_row(user_msg("ITEM", "THREAD", "How does the agent factory paradigm change software?", at), "USER"),
        item_row(reply("ITEM", "THREAD", "**Agents** are built, not hand-coded: " + "a longer tutor reply. " * 20, at), "USER"),
    ]
    return {"thread": t, "items": items}


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "fixture"
    print(json.dumps(fixture() if what == "fixture" else templates(), ensure_ascii=False))
