// A streaming Server-Sent Events reader for fetch() responses.
//
// Why not EventSource: it only does GET and cannot send a body or an Authorization header.
// Frames are `data: {json}\n\n`; a network chunk may end anywhere (inside a frame, or inside a
// multi-byte UTF-8 character), so bytes are decoded with a streaming TextDecoder and frames are
// cut only at a blank line.

/** Yields the parsed JSON of every `data:` frame of `response`, in order. */
export async function* readEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder("utf-8");
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      // A trailing CR may be the first half of a CRLF split across chunks: keep it for later.
      const held = !done && buffer.endsWith("\r") ? "\r" : "";
      buffer = buffer.slice(0, buffer.length - held.length).replace(/\r\n?/g, "\n") + held;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const frame = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const event = parseFrame(frame);
        if (event !== undefined) yield event;
      }
      if (done) break;
    }
    const last = parseFrame(buffer);
    if (last !== undefined) yield last;
  } finally {
    reader.releaseLock();
  }
}

/** The JSON of one frame's `data:` lines (joined by newlines); undefined for comments. */
export function parseFrame(frame) {
  const data = frame
    .split("\n")
    .filter((line) => line.startsWith("data:"))
    .map((line) => line.slice(5).replace(/^ /, ""));
  if (data.length === 0) return undefined;
  return JSON.parse(data.join("\n"));
}
