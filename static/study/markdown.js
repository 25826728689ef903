// A tiny, safe Markdown renderer for model replies and lessons.
//
// Why hand-written: the page must work offline without a build step or CDN, and model text is
// untrusted. This renderer never parses HTML at all: it builds DOM nodes with createElement and
// sets text with textContent, so any `<script>` or `<img onerror>` in the input stays literal
// text. Only a whitelist of elements is ever created: h1-h6, p, strong, em, code, pre, ul, ol,
// li, blockquote, hr, a (http/https/relative-free: only absolute http(s) URLs become links).

const ALLOWED_URL = /^https?:\/\/[^\s<>"']+$/i;

/** Renders `text` as Markdown into a fresh DocumentFragment. */
export function renderMarkdown(text) {
  const fragment = document.createDocumentFragment();
  const lines = String(text ?? "").replace(/\r\n?/g, "\n").split("\n");
  let i = 0;
  while (i < lines.length) {
    i = renderBlock(lines, i, fragment);
  }
  return fragment;
}

/** Replaces the children of `element` with the rendering of `text`. */
export function renderInto(element, text) {
  element.replaceChildren(renderMarkdown(text));
}

function renderBlock(lines, i, parent) {
  const line = lines[i];
  if (line.trim() === "") return i + 1;
  const fence = line.match(/^\s*(```|~~~)\s*([\w+-]*)\s*$/);
  if (fence) return renderFence(lines, i, parent, fence[1]);
  const heading = line.match(/^(#{1,6})\s+(.*?)\s*#*\s*$/);
  if (heading) {
    parent.append(inline(`h${heading[1].length}`, heading[2]));
    return i + 1;
  }
  if (/^\s*([-*_])(\s*\1){2,}\s*$/.test(line)) {
    parent.append(document.createElement("hr"));
    return i + 1;
  }
  if (/^\s*>/.test(line)) return renderQuote(lines, i, parent);
  if (listMarker(line)) return renderList(lines, i, parent);
  return renderParagraph(lines, i, parent);
}

function renderFence(lines, i, parent, marker) {
  const pre = document.createElement("pre");
  const code = document.createElement("code");
  const body = [];
  let j = i + 1;
  // An unclosed fence (a reply still streaming) runs to the end of the text.
  while (j < lines.length && !lines[j].trim().startsWith(marker)) body.push(lines[j++]);
  code.textContent = body.join("\n");
  pre.append(code);
  parent.append(pre);
  return j + 1;
}

function renderQuote(lines, i, parent) {
  const body = [];
  let j = i;
  while (j < lines.length && /^\s*>/.test(lines[j])) body.push(lines[j++].replace(/^\s*>\s?/, ""));
  const quote = document.createElement("blockquote");
  quote.append(renderMarkdown(body.join("\n")));
  parent.append(quote);
  return j;
}

function listMarker(line) {
  const m = line.match(/^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/);
  if (!m) return null;
  return { indent: m[1].length, ordered: /\d/.test(m[2]), text: m[3], start: parseInt(m[2], 10) };
}

function renderList(lines, i, parent) {
  const first = listMarker(lines[i]);
  const list = document.createElement(first.ordered ? "ol" : "ul");
  if (first.ordered && first.start > 1) list.setAttribute("start", String(first.start));
  let j = i;
  while (j < lines.length) {
    const m = listMarker(lines[j]);
    if (!m || m.ordered !== first.ordered || m.indent > first.indent + 1) break;
    const parts = [m.text];
    j += 1;
    // Indented continuation lines (including nested list items) belong to this item.
    while (j < lines.length && /^\s{2,}\S/.test(lines[j]) && !(listMarker(lines[j])?.indent <= first.indent)) {
      parts.push(lines[j].replace(/^\s{2,4}/, ""));
      j += 1;
    }
    const item = document.createElement("li");
    if (parts.length === 1) appendInline(item, parts[0]);
    else item.append(renderMarkdown(parts.join("\n")));
    list.append(item);
  }
  parent.append(list);
  return j;
}

function renderParagraph(lines, i, parent) {
  const body = [];
  let j = i;
  while (j < lines.length && lines[j].trim() !== "" && !startsBlock(lines[j])) body.push(lines[j++].trimStart());
  if (body.length === 0) body.push(lines[j++].trim());
  parent.append(inline("p", body.join("\n")));
  return j;
}

function startsBlock(line) {
  return /^(#{1,6})\s/.test(line) || /^\s*(```|~~~)/.test(line) || /^\s*>/.test(line) || listMarker(line) !== null;
}

function inline(tag, text) {
  const element = document.createElement(tag);
  appendInline(element, text);
  return element;
}

// Inline spans, in priority order: code, links, bold, italics. Each match splits the text;
// everything outside a match is appended as a plain text node.
const INLINE = [
  { re: /`([^`\n]+)`/, build: (m) => textElement("code", m[1]) },
  { re: /\[([^\]\n]+)\]\(([^)\s]+)\)/, build: (m) => link(m[1], m[2]) },
  { re: /\*\*([^*\s](?:[^\n]*?[^*\s])?)\*\*|(?<![\w])__([^_\s](?:[^\n]*?[^_\s])?)__(?![\w])/, build: (m) => nested("strong", m[1] ?? m[2]) },
  { re: /\*([^*\s](?:[^*\n]*?[^*\s])?)\*|(?<![\w])_([^_\s](?:[^_\n]*?[^_\s])?)_(?![\w])/, build: (m) => nested("em", m[1] ?? m[2]) },
];

function appendInline(parent, text) {
  let best = null;
  for (const rule of INLINE) {
    const m = rule.re.exec(text);
    if (m && (best === null || m.index < best.m.index)) best = { m, rule };
  }
  if (best === null) {
    appendText(parent, text);
    return;
  }
  appendText(parent, text.slice(0, best.m.index));
  parent.append(best.rule.build(best.m));
  appendInline(parent, text.slice(best.m.index + best.m[0].length));
}

/** Text; a single newline is a soft break (a space), a line ending in two spaces or `\` a hard one. */
function appendText(parent, text) {
  const parts = text.split(/(?: {2,}|\\)\n/);
  parts.forEach((part, k) => {
    if (k > 0) parent.append(document.createElement("br"));
    if (part) parent.append(document.createTextNode(part.replace(/\n/g, " ")));
  });
}

function textElement(tag, text) {
  const element = document.createElement(tag);
  element.textContent = text;
  return element;
}

function nested(tag, text) {
  const element = document.createElement(tag);
  appendInline(element, text);
  return element;
}

function link(label, url) {
  if (!ALLOWED_URL.test(url)) return document.createTextNode(label);
  const a = document.createElement("a");
  a.href = url;
  a.rel = "noopener noreferrer nofollow";
  a.target = "_blank";
  appendInline(a, label);
  return a;
}
