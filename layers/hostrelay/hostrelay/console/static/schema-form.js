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

function kindOf(schema) {
  const plain = plainSchema(schema);
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
  } else if (kind === "string") {
    const rules = { minlength: plain.minLength, maxlength: plain.maxLength, pattern: plain.pattern ? plain.pattern.replace(/^\^|\$$/g, "") : undefined };
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
