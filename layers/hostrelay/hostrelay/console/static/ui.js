// Small shared pieces: times, state badges, error notes, and a data-loading hook.
import { html, useCallback, useEffect, useRef, useState } from "./vendor-htm-preact.js";

export { html };

export function Time({ value }) {
  if (!value) return html`<span class="muted">—</span>`;
  const when = new Date(value);
  if (Number.isNaN(when.getTime())) return html`<span>${value}</span>`;
  const utc = `${when.toISOString().replace(".000Z", "Z")} (UTC)`;
  return html`<time datetime=${when.toISOString()} title=${utc}>${when.toLocaleString()}</time>`;
}

// State text is always shown: colour only repeats it.
export function Badge({ state }) {
  const text = String(state || "unknown");
  return html`<span class=${`badge badge-${text.toLowerCase().replace(/[^a-z_]/g, "")}`}>${text}</span>`;
}

export function ErrorNote({ error }) {
  if (!error) return null;
  if (error.status === 403) {
    return html`<p class="error" role="alert">Not allowed: ${error.message}.</p>`;
  }
  const details = (error.details || [])
    .filter((detail) => detail.field || detail.message)
    .map((detail) => html`<li>${detail.field ? `${detail.field}: ` : ""}${detail.message || ""}</li>`);
  return html`<div class="error" role="alert">
    <p>${error.message}${error.status ? ` (${error.status})` : ""}</p>
    ${details.length ? html`<ul>${details}</ul>` : null}
  </div>`;
}

// Loads `load()` when `deps` change; `every_ms` polls while `keepPolling(data)` holds.
export function useLoad(load, deps, { every_ms = 0, keepPolling = () => true } = {}) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const generation = useRef(0);
  const reload = useCallback(() => {
    const mine = ++generation.current;
    return load().then(
      (data) => mine === generation.current && setState({ data, error: null, loading: false }),
      (error) => mine === generation.current && setState((s) => ({ ...s, error, loading: false })),
    );
  }, deps);
  useEffect(() => {
    setState((s) => ({ ...s, loading: true }));
    reload();
    return () => generation.current++;
  }, [reload]);
  useEffect(() => {
    if (!every_ms || !keepPolling(state.data)) return undefined;
    const timer = setTimeout(reload, every_ms);
    return () => clearTimeout(timer);
  }, [state, every_ms]);
  return { ...state, reload };
}

export function may(me, scope) {
  return Boolean(me && me.may && me.may.includes(scope));
}

export function KeyValues({ entries }) {
  return html`<dl class="facts">
    ${entries.map(([key, value]) => html`<div><dt>${key}</dt><dd>${value ?? html`<span class="muted">—</span>`}</dd></div>`)}
  </dl>`;
}
