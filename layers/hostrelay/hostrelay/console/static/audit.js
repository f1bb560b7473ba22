// The audit trail (admins): who did what, newest first, paged back by time.
import { useState } from "./vendor-htm-preact.js";
import { get, query } from "./api.js";
import { html, ErrorNote, Time, useLoad } from "./ui.js";

export function AuditPage() {
  const [filter, setFilter] = useState({ action: "", until: "" });
  const { data, error } = useLoad(() => get(`/v1/audit${query({ ...filter, limit: 100 })}`), [filter]);
  const events = data ? data.events : [];
  function submit(event) {
    event.preventDefault();
    setFilter({ action: event.currentTarget.elements.action.value.trim(), until: "" });
  }
  return html`<section>
    <h1>Audit trail</h1>
    <form class="inline filters" onSubmit=${submit}>
      <label>Action <input name="action" placeholder="e.g. host.revoke" pattern="[a-z_]+\\.[a-z_]+" /></label>
      <button type="submit">Filter</button>
    </form>
    <${ErrorNote} error=${error} />
    ${data && html`<div class="table-wrap"><table id="audit">
      <thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">Action</th><th scope="col">Target</th><th scope="col">Details</th></tr></thead>
      <tbody>
        ${events.length === 0 && html`<tr><td colspan="5" class="muted">Nothing in this range.</td></tr>`}
        ${events.map((entry) => html`<tr>
          <td><${Time} value=${entry.at} /></td><td>${entry.actor}</td><td>${entry.action}</td><td>${entry.target}</td>
          <td class="mono">${Object.keys(entry.details).length ? JSON.stringify(entry.details) : ""}</td>
        </tr>`)}
      </tbody>
    </table></div>
    ${events.length === 100 && html`<p><button type="button" class="secondary" onClick=${() => setFilter({ ...filter, until: events[events.length - 1].at })}>Older</button></p>`}`}
  </section>`;
}
