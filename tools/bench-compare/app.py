"""The design study-mode-api replaces, reduced to `GET /chatkit/suggestions` (benchmark only).

Owns: a faithful, idiomatic reproduction of the Python prototype's suggestions path, so that
`scripts/bench-compare` can load both designs in the same run: FastAPI on uvicorn (uvloop +
httptools), the lesson cached in Redis through redis-py's asyncio client by a generic caching
decorator (key `content_loader.load_lesson_content:{path}:`, JSON value, TTL), a miss read
from the same local lesson folder our server reads (the prototype fetched from GitHub; a
local origin makes both origins equal), the title parsed from the lesson, and the
prototype's answer `{"suggestions": [three fixed template strings]}`.

Must not: be used for anything but that comparison. It has no rate limiter, no auth and no
metrics, which can only make it faster than the prototype, never slower.

Settings (environment): CONTENT_DIR (lesson folder), REDIS_URL, CACHE_KEY_PREFIX (prepended
to every key so a run can remove its own keys), CONTENT_CACHE_TTL (seconds, default 30 days
as in the prototype).
"""

import functools
import json
import os
import re
from pathlib import Path

import redis.asyncio as aioredis
from fastapi import FastAPI
from redis.exceptions import RedisError

CONTENT_DIR = Path(os.environ.get("CONTENT_DIR", "sample-book"))
CONTENT_CACHE_TTL = int(os.environ.get("CONTENT_CACHE_TTL", str(30 * 24 * 3600)))
CACHE_KEY_PREFIX = os.environ.get("CACHE_KEY_PREFIX", "")
EXTENSIONS = (".md", ".mdx", "/index.md", "/README.md")

# One client per worker process; redis-py keeps a connection pool behind it.
redis = aioredis.from_url(
    os.environ.get("REDIS_URL", "redis://127.0.0.1:6379"), decode_responses=True
)

app = FastAPI(title="Study Mode API (prototype design, benchmark copy)")


def cache_response(namespace: str, ttl: int):
    """Caches an async function's JSON-serialisable result in Redis, keyed by its arguments.

    Redis errors degrade to calling the function (the prototype's "graceful degradation").
    """

    def decorate(fn):
        name = f"{namespace}.{fn.__name__}"

        @functools.wraps(fn)
        async def cached(*args, **kwargs):
            parts = [str(a) for a in args] + [f"{k}={v}" for k, v in sorted(kwargs.items())]
            key = f"{CACHE_KEY_PREFIX}{name}:{':'.join(parts)}:"
            try:
                hit = await redis.get(key)
            except RedisError:
                hit = None
            if hit is not None:
                value = json.loads(hit)
                value["cached"] = True
                return value
            value = await fn(*args, **kwargs)
            try:
                await redis.set(key, json.dumps(value), ex=ttl)
            except RedisError:
                pass
            return value

        return cached

    return decorate


def read_lesson(lesson_path: str) -> str | None:
    """The lesson's Markdown, trying the prototype's extensions in order; None when absent."""
    base = CONTENT_DIR / lesson_path.strip("/")
    for ext in EXTENSIONS:
        candidate = Path(f"{base}{ext}")
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8")
    return None


def extract_title(text: str, lesson_path: str) -> str:
    """Frontmatter `title:`, else the first `# ` heading, else the last path segment."""
    in_frontmatter = False
    heading = None
    for line in text.splitlines():
        if line.strip() == "---":
            in_frontmatter = not in_frontmatter
            continue
        if in_frontmatter and line.strip().startswith("title:"):
            title = line.split("title:", 1)[1].strip().strip("\"'")
            if title:
                return title
        if heading is None and line.startswith("# "):
            heading = line[2:].strip()
    return heading or humanise(lesson_path)


def humanise(lesson_path: str) -> str:
    segment = lesson_path.strip("/").split("/")[-1] if lesson_path.strip("/") else ""
    return re.sub(r"^\d+-", "", segment).replace("-", " ").title() or "This Lesson"


def strip_frontmatter(text: str) -> str:
    """The lesson without its YAML frontmatter and MDX import lines."""
    if text.startswith("---"):
        end = text.find("---", 3)
        if end > 0:
            text = text[end + 3 :]
    lines = (
        line
        for line in text.splitlines()
        if not (line.strip().startswith("import ") and " from " in line)
    )
    return "\n".join(lines).strip()


@cache_response("content_loader", ttl=CONTENT_CACHE_TTL)
async def load_lesson_content(lesson_path: str) -> dict:
    if not lesson_path:
        return {"content": "", "title": "Unknown Page", "cached": False}
    text = read_lesson(lesson_path)
    if text is None:
        return {"content": "", "title": humanise(lesson_path), "cached": False}
    return {
        "content": strip_frontmatter(text),
        "title": extract_title(text, lesson_path),
        "cached": False,
    }


@app.get("/chatkit/suggestions")
async def get_suggestions(mode: str = "teach", lesson_path: str = "") -> dict:
    lesson = await load_lesson_content(lesson_path)
    title = lesson["title"]
    if mode == "teach":
        if lesson["content"]:
            suggestions = [f"What is {title} about?", "Explain the key concepts", "Give me an example"]
        else:
            suggestions = [
                "What topics are covered here?",
                "Explain the main idea",
                "How does this work?",
            ]
    else:
        suggestions = ["Quick summary", "Key takeaways", "Main concepts"]
    return {"suggestions": suggestions}


@app.get("/health")
async def health() -> dict:
    return {"status": "healthy"}
