"""Time from request to first reply delta for `threads.create`, at a given concurrency.

Usage: python bench_first_delta.py http://127.0.0.1:8000 CONCURRENCY ROUNDS
Each client opens a fresh connection, POSTs threads.create and stops the clock when the first
`assistant_message.content_part.text_delta` frame arrives (bytes are scanned as they come, so
the framing is not trusted to chunk boundaries). Prints p50/p99 in milliseconds. Standard
library only (asyncio streams), so it runs with any python3.
"""

import asyncio
import json
import statistics
import sys
import time
from urllib.parse import urlparse

BODY = json.dumps({"type": "threads.create", "params": {"input": {
    "content": [{"type": "input_text", "text": "What is a closure?"}],
    "attachments": [], "inference_options": {}}}}).encode()
MARK = b'"assistant_message.content_part.text_delta"'


async def one(host: str, port: int, user: str) -> float:
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, port)
    head = (f"POST /chatkit HTTP/1.1\r\nHost: {host}\r\nX-User-ID: {user}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n"
            f"Connection: close\r\n\r\n").encode()
    writer.write(head + BODY)
    await writer.drain()
    seen = b""
    while MARK not in seen:
        chunk = await reader.read(65536)
        if not chunk:
            raise RuntimeError("stream ended before the first delta: " + seen[:300].decode(errors="replace"))
        seen = seen[-len(MARK):] + chunk if MARK not in chunk else chunk
    elapsed = time.perf_counter() - started
    writer.close()
    return elapsed


async def main() -> None:
    url, concurrency, rounds = urlparse(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    samples: list[float] = []
    for r in range(rounds):
        samples += await asyncio.gather(*(one(url.hostname, url.port, f"bench-{r}-{i}") for i in range(concurrency)))
    samples.sort()
    p = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))] * 1000
    print(f"concurrency={concurrency} n={len(samples)} p50={p(0.5):.2f}ms p99={p(0.99):.2f}ms "
          f"mean={statistics.mean(samples) * 1000:.2f}ms")


if __name__ == "__main__":
    asyncio.run(main())
