// Form fields generated from JSON Schema (the API's own models), and the values read back.
import { html } from "./ui.js";

// `anyOf: [X, {type: null}]` is an optional X.
export function plainSchema(schema) {
  if (schema && Array.isArray(schema.anyOf)) {
    const options = schema.anyOf.filter((option) => option.type !== "null");
    if (options.length === 1) return { ...options[0], description: schema.description, default: schema.default };
  }
  return schema || {};
}

// A JSON Schema pattern as an input's `pattern` (which browsers compile with the `v` flag,
// where a literal "-" at the edge of a class must be escaped); undefined when it cannot be
// expressed, and then the API alone judges it.
export function inputPattern(pattern) {
  if (!pattern) return undefined;
  const body = pattern
    .replace(/^\^/, "")
    .replace(/\$$/, "")
    .replace(/\[(?:\\.|[^\]\\])*\]/g, (cls) => cls.replace(/^\[(\^?)-/, "[$1\\-").replace(/([^\\])-\]$/, "$1\\-]"));
  try {
    new RegExp(`^(?:${body})$`, "v");
    return body;
  } catch {
    return undefined;
  }
}

// A datetime-local value (the browser's local time) as the ISO 8601 instant the API wants.
function isoInstant(raw) {
  const when = new Date(raw);
  return Number.isNaN(when.getTime()) ? raw : when.toISOString();
}

function kindOf(schema) {
  const plain = plainSchema(schema);
  if (plain.type === "string" && plain.format === "date-time") return "datetime";
  if (plain.type === "array" && plainSchema(plain.items).type === "string") return "lines";
  if (["string", "integer", "number", "boolean"].includes(plain.type)) return plain.type;
  return "json";
}

function Field({ prefix, name, schema, required }) {
  const plain = plainSchema(schema);
  const kind = kindOf(schema);
  const id = `${prefix}-${name}`;
  const title = plain.title || name;
  const hint = [
    plain.description,
    kind === "lines" ? "one per line" : null,
    kind === "json" ? "JSON" : null,
    kind === "datetime" ? "your local time" : null,
    plain.default !== undefined && plain.default !== null && kind !== "boolean" ? `default ${JSON.stringify(plain.default)}` : null,
  ].filter(Boolean).join(" · ");
  const common = { id, name: `${prefix}.${name}`, "data-kind": kind, required: required && kind !== "boolean" };
  let input;
  if (kind === "boolean") {
    input = html`<input type="checkbox" ...${common} checked=${plain.default === true} />`;
  } else if (kind === "integer" || kind === "number") {
    const bounds = {
      min: plain.minimum ?? (plain.exclusiveMinimum !== undefined ? plain.exclusiveMinimum : undefined),
      max: plain.maximum ?? plain.exclusiveMaximum,
    };
    input = html`<input type="number" step=${kind === "integer" ? "1" : "any"} ...${common} ...${bounds} />`;
  } else if (kind === "datetime") {
    input = html`<input type="datetime-local" step="1" ...${common} />`;
  } else if (kind === "string") {
    const rules = { minlength: plain.minLength, maxlength: plain.maxLength, pattern: inputPattern(plain.pattern) };
    input = plain.maxLength && plain.maxLength > 256
      ? html`<textarea rows="3" ...${common} ...${rules}></textarea>`
      : html`<input type="text" spellcheck="false" ...${common} ...${rules} />`;
  } else {
    input = html`<textarea rows=${kind === "lines" ? 4 : 3} spellcheck="false" ...${common}></textarea>`;
  }
  return html`<div class=${`field field-${kind}`}>
    <label for=${id}>${title}${required ? html` <span class="req" aria-label="required">*</span>` : null}</label>
    ${input}
    ${hint && html`<small>${hint}</small>`}
  </div>`;
}

export function SchemaFields({ prefix, schema, skip = [] }) {
  const properties = (schema && schema.properties) || {};
  const required = new Set((schema && schema.required) || []);
  return Object.entries(properties)
    .filter(([name]) => !skip.includes(name))
    .map(([name, property]) => html`<${Field} key=${`${prefix}-${name}`} prefix=${prefix} name=${name} schema=${property} required=${required.has(name)} />`);
}

// Only what the user filled in: the API applies its own defaults to the rest.
export function readFields(form, prefix) {
  const values = {};
  const problems = [];
  for (const element of form.elements) {
    if (!element.name || !element.name.startsWith(`${prefix}.`)) continue;
    const name = element.name.slice(prefix.length + 1);
    const kind = element.dataset.kind;
    if (kind === "boolean") {
      if (element.checked) values[name] = true;
      continue;
    }
    const raw = element.value;
    if (raw.trim() === "") continue;
    if (kind === "integer" || kind === "number") values[name] = Number(raw);
    else if (kind === "datetime") values[name] = isoInstant(raw);
    else if (kind === "lines") values[name] = raw.split("\n").map((line) => line.replace(/\r$/, "")).filter((line) => line !== "");
    else if (kind === "json") {
      try {
        values[name] = JSON.parse(raw);
      } catch {
        problems.push({ field: `${prefix}.${name}`, message: "is not valid JSON" });
      }
    } else values[name] = raw;
  }
  return { values, problems };
}
