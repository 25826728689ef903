// Renders /openapi.json as readable HTML. Every string from the document is set with
// textContent or the study page's safe Markdown renderer (never innerHTML), so the page stays
// safe whatever the document holds.

import { renderMarkdown } from "/study/markdown.js";

/** An element holding `text` rendered as (safe) Markdown. */
const md = (tag, text, className) => {
  const node = el(tag, undefined, className);
  node.append(renderMarkdown(text ?? ""));
  return node;
};

const el = (tag, text, className) => {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
};

function schemaName(ref) {
  return ref.replace("#/components/schemas/", "");
}

/** A one-line description of a schema: its $ref name, type, or union. */
function describe(schema) {
  if (!schema) return "";
  if (schema.$ref) return schemaName(schema.$ref);
  if (schema.oneOf) return schema.oneOf.map(describe).join(" | ");
  if (schema.anyOf) return schema.anyOf.map(describe).join(" | ");
  if (schema.type === "array") return `[${describe(schema.items)}]`;
  if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(" | ");
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  return Array.isArray(schema.type) ? schema.type.join(" | ") : schema.type ?? "any";
}

function link(name) {
  const a = el("a", name);
  a.href = `#schema-${name}`;
  return a;
}

function schemaRef(schema) {
  return schema?.$ref ? link(schemaName(schema.$ref)) : el("code", describe(schema));
}

function operation(path, method, op) {
  const box = el("section", undefined, "op");
  box.id = `${method}-${path}`.replace(/[^\w-]/g, "_");
  const h = el("h3");
  h.append(el("span", method, `method ${method}`), el("code", path));
  box.append(h, md("div", op.summary));
  if (op.description) box.append(md("div", op.description));
  if (op.parameters?.length) {
    const table = el("table");
    table.append(row(["parameter", "in", "required", "schema", "meaning"], "th"));
    for (const p of op.parameters) {
      const cells = row([p.name, p.in, p.required ? "yes" : "no", describe(p.schema)]);
      cells.append(md("td", p.description));
      table.append(cells);
    }
    box.append(table);
  }
  if (op.requestBody) {
    const body = el("p", "Request body: ");
    for (const [type, media] of Object.entries(op.requestBody.content ?? {})) {
      body.append(el("code", type), " ", schemaRef(media.schema));
    }
    box.append(body);
  }
  const responses = el("table");
  responses.append(row(["status", "meaning", "body"], "th"));
  for (const [status, response] of Object.entries(op.responses ?? {})) {
    const cells = row([status]);
    cells.append(md("td", response.description));
    const td = el("td");
    for (const [type, media] of Object.entries(response.content ?? {})) {
      td.append(el("code", type), " ", schemaRef(media.schema), " ");
    }
    cells.append(td);
    responses.append(cells);
  }
  box.append(responses);
  return box;
}

function row(cells, tag = "td") {
  const tr = el("tr");
  for (const c of cells) tr.append(el(tag, String(c)));
  return tr;
}

function schemaBlock(name, schema) {
  const details = el("details");
  details.id = `schema-${name}`;
  details.append(el("summary", name));
  if (schema.description) details.append(md("div", schema.description));
  details.append(el("pre", JSON.stringify(schema, null, 2)));
  return details;
}

async function main() {
  const main = document.getElementById("operations");
  try {
    const response = await fetch("/openapi.json");
    if (!response.ok) throw new Error(`${response.status}`);
    const doc = await response.json();
    document.getElementById("title").textContent = `${doc.info.title} ${doc.info.version}`;
    document.getElementById("summary").replaceChildren(renderMarkdown(doc.info.description ?? ""));
    main.replaceChildren();
    const toc = document.getElementById("toc");
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        if (typeof op !== "object" || !op.responses) continue;
        const box = operation(path, method, op);
        main.append(box);
        const li = el("li");
        const a = el("a", `${method.toUpperCase()} ${path}`);
        a.href = `#${box.id}`;
        li.append(a);
        toc.append(li);
      }
    }
    const schemas = document.getElementById("schemas");
    for (const [name, schema] of Object.entries(doc.components?.schemas ?? {})) {
      schemas.append(schemaBlock(name, schema));
    }
    document.body.dataset.ready = "true";
  } catch (error) {
    main.textContent = `Could not load /openapi.json: ${error.message}`;
  }
}

main();
