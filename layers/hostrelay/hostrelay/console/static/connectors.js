// Connectors: schedule, last run and errors, "run now" for operators, and each one's run history.
import { useState } from "./vendor-htm-preact.js";
import { get, post } from "./api.js";
import { html, Badge, ErrorNote, Time, may, useLoad } from "./ui.js";

function RunHistory({ connector }) {
  const { data, error } = useLoad(() => get(`/v1/connectors/${encodeURIComponent(connector.id)}/runs?limit=20`), [connector.id], { every_ms: 5000 });
  if (error) return html`<${ErrorNote} error=${error} />`;
  if (!data) return html`<p class="loading">Loading runs…</p>`;
  const runs = data.runs || [];
  return html`<div class="panel" id="connector-runs">
    <h2>Runs of ${connector.name}</h2>
    ${runs.length === 0 ? html`<p class="muted">No runs yet.</p>` : html`<div class="table-wrap"><table>
      <thead><tr><th scope="col">Job</th><th scope="col">State</th><th scope="col">Started</th><th scope="col">Finished</th><th scope="col">Counts</th><th scope="col">Error</th></tr></thead>
      <tbody>${runs.map((run) => html`<tr>
        <th scope="row"><a class="mono" href=${`#/jobs/${run.job_id}`}>${run.job_id}</a></th>
        <td><${Badge} state=${run.state} /></td><td><${Time} value=${run.started_at || run.created_at} /></td>
        <td><${Time} value=${run.finished_at} /></td><td>${Object.entries(run.counts || {}).map(([key, value]) => `${key} ${value}`).join(", ")}</td><td>${run.error ? `${run.error.code}: ${run.error.message}` : ""}</td>
      </tr>`)}</tbody>
    </table></div>`}
  </div>`;
}

// The outcome of the connector's last run: its job's state, and its error if it failed.
function LastRun({ connector }) {
  const { data: job } = useLoad(
    () => (connector.last_job_id ? get(`/v1/jobs/${encodeURIComponent(connector.last_job_id)}`) : Promise.resolve(null)),
    [connector.last_job_id],
  );
  if (!connector.last_job_id) return html`<span class="muted">never run</span>`;
  return html`<a href=${`#/jobs/${connector.last_job_id}`}><${Time} value=${connector.last_run_at} /></a>
    ${job && html` <${Badge} state=${job.state} />`}
    ${job && job.error && html`<div class="error-text">${job.error.code}: ${job.error.message}</div>`}`;
}

export function ConnectorsPage({ me }) {
  const { data, error, reload } = useLoad(() => get("/v1/connectors"), [], { every_ms: 10000 });
  const [selected, setSelected] = useState(null);
  const [runError, setRunError] = useState(null);
  const operator = may(me, "operator");
  async function runNow(connector) {
    setRunError(null);
    try {
      await post(`/v1/connectors/${encodeURIComponent(connector.id)}/run`);
      setSelected(connector);
      reload();
    } catch (failure) {
      setRunError(failure);
    }
  }
  const connectors = data ? data.connectors : [];
  return html`<section>
    <h1>Connectors</h1>
    <${ErrorNote} error=${error || runError} />
    ${data && html`<div class="table-wrap"><table id="connectors">
      <thead><tr><th scope="col">Name</th><th scope="col">Kind</th><th scope="col">Runs on</th><th scope="col">Schedule</th><th scope="col">Last run</th><th scope="col">Next run</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
      <tbody>
        ${connectors.length === 0 && html`<tr><td colspan="7" class="muted">No connectors (the CLI adds them: hostrelay connectors create).</td></tr>`}
        ${connectors.map((connector) => html`<tr>
          <th scope="row">${connector.name}${connector.enabled ? "" : html` <span class="badge badge-disabled">disabled</span>`}</th>
          <td>${connector.kind}</td><td>${connector.target}</td><td>${connector.schedule || html`<span class="muted">on demand</span>`}</td>
          <td class="last-run"><${LastRun} connector=${connector} /></td>
          <td><${Time} value=${connector.next_run_at} /></td>
          <td class="actions">
            <button type="button" class="secondary" onClick=${() => setSelected(connector)}>History</button>
            ${operator && html`<button type="button" onClick=${() => runNow(connector)}>Run now</button>`}
          </td>
        </tr>`)}
      </tbody>
    </table></div>`}
    ${selected && html`<${RunHistory} connector=${selected} />`}
  </section>`;
}
