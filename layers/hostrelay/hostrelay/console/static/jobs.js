// Jobs: the filtered, paged list, and the start form generated from the API's own schemas.
import { useState } from "./vendor-htm-preact.js";
import { ApiError, get, post, query } from "./api.js";
import { html, Badge, ErrorNote, Time, may, useLoad } from "./ui.js";
import { SchemaFields, readFields } from "./schema-form.js";

export const JOB_STATES = ["QUEUED", "DISPATCHED", "IN_PROGRESS", "SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELED", "REJECTED", "EXPIRED"];
export const TERMINAL = new Set(["SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELED", "REJECTED", "EXPIRED"]);
const PAGE_SIZE = 25;

export function mayStartJobs(me) {
  return may(me, "operator") || may(me, "service");
}

export function JobsPage({ me, params }) {
  const [filters, setFilters] = useState({ host: params.get("host") || "", type: "", state: "" });
  const [pages, setPages] = useState([null]); // next_token of each page seen; null = first
  const token = pages[pages.length - 1];
  const types = useLoad(() => get("/v1/job-types"), []);
  const { data, error, loading } = useLoad(
    () => get(`/v1/jobs${query({ ...filters, limit: PAGE_SIZE, next_token: token })}`),
    [filters, token],
    { every_ms: 5000 },
  );
  function applyFilters(event) {
    event.preventDefault();
    const form = event.currentTarget.elements;
    setFilters({ host: form.host.value.trim(), type: form.type.value, state: form.state.value });
    setPages([null]);
  }
  return html`<section>
    <h1>Jobs</h1>
    ${mayStartJobs(me) && html`<p><a class="button" href="#/jobs/new" id="start-job">Start a job</a></p>`}
    <form class="inline filters" id="job-filters" onSubmit=${applyFilters}>
      <label>Host <input name="host" value=${filters.host} pattern="[A-Za-z0-9]([A-Za-z0-9\\-]{0,61}[A-Za-z0-9])?" /></label>
      <label>Type <select name="type" value=${filters.type}>
        <option value="">any</option>
        ${(types.data ? types.data.job_types : []).map((type) => html`<option value=${type.name}>${type.name}</option>`)}
      </select></label>
      <label>State <select name="state" value=${filters.state}>
        <option value="">any</option>
        ${JOB_STATES.map((state) => html`<option value=${state}>${state}</option>`)}
      </select></label>
      <button type="submit">Filter</button>
    </form>
    <${ErrorNote} error=${error} />
    ${data && html`<div class="table-wrap"><table id="jobs">
      <thead><tr><th scope="col">Job</th><th scope="col">Type</th><th scope="col">Host</th><th scope="col">State</th><th scope="col">Created</th><th scope="col">Finished</th><th scope="col">By</th></tr></thead>
      <tbody>
        ${data.jobs.map((job) => html`<tr data-job=${job.id}>
          <th scope="row"><a href=${`#/jobs/${job.id}`} class="mono">${job.id}</a></th>
          <td>${job.type}</td><td>${job.host}</td><td><${Badge} state=${job.state} /></td>
          <td><${Time} value=${job.created_at} /></td><td><${Time} value=${job.finished_at} /></td>
          <td>${job.created_by}</td>
        </tr>`)}
        ${data.jobs.length === 0 && html`<tr><td colspan="7" class="muted">No jobs on this page${loading ? "" : " match"}.</td></tr>`}
      </tbody>
    </table></div>
    <nav class="pager" aria-label="Pages">
      <button type="button" class="secondary" disabled=${pages.length === 1} onClick=${() => setPages(pages.slice(0, -1))}>Previous</button>
      <span>Page ${pages.length}</span>
      <button type="button" class="secondary" disabled=${!data.next_token} onClick=${() => setPages([...pages, data.next_token])}>Next</button>
    </nav>`}
  </section>`;
}

async function loadForm() {
  const [openapi, types, hosts] = await Promise.all([get("/v1/openapi.json"), get("/v1/job-types"), get("/v1/hosts")]);
  return {
    request: openapi.components.schemas.JobCreateRequest,
    types: types.job_types,
    hosts: hosts.hosts.filter((host) => host.state !== "revoked").map((host) => host.name),
  };
}

// Options of POST /v1/jobs besides type, host and params, straight from its OpenAPI schema.
const REQUEST_OPTIONS = ["timeout_s", "max_attempts", "deliver_by", "idempotency_key"];

export function NewJobPage({ me }) {
  const { data, error } = useLoad(loadForm, []);
  const [typeName, setTypeName] = useState("ping");
  const [failure, setFailure] = useState(null);
  const [busy, setBusy] = useState(false);
  if (!mayStartJobs(me)) return html`<p class="error" role="alert">Not allowed: starting jobs needs the operator or service scope.</p>`;
  if (error) return html`<${ErrorNote} error=${error} />`;
  if (!data) return html`<p class="loading">Loading the job types…</p>`;
  const type = data.types.find((candidate) => candidate.name === typeName) || data.types[0];
  const requestSchema = { ...data.request, properties: Object.fromEntries(REQUEST_OPTIONS.filter((name) => data.request.properties[name]).map((name) => [name, data.request.properties[name]])) };
  async function submit(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const params = readFields(form, "params");
    const options = readFields(form, "options");
    const problems = [...params.problems, ...options.problems];
    if (problems.length) {
      setFailure(new ApiError(0, "invalid_form", "the form has errors", problems));
      return;
    }
    setBusy(true);
    setFailure(null);
    try {
      const job = await post("/v1/jobs", { type: type.name, host: form.elements.host.value, params: params.values, ...options.values });
      location.hash = `#/jobs/${job.id}`;
    } catch (caught) {
      setFailure(caught);
    } finally {
      setBusy(false);
    }
  }
  const targets = type.runs_in === "cloud" ? ["cloud"] : data.hosts;
  return html`<section>
    <h1>Start a job</h1>
    <form id="new-job" class="stacked" onSubmit=${submit}>
      <div class="field"><label for="job-type">Type</label>
        <select id="job-type" name="type" value=${type.name} onChange=${(event) => { setTypeName(event.currentTarget.value); setFailure(null); }}>
          ${data.types.map((candidate) => html`<option value=${candidate.name}>${candidate.name}</option>`)}
        </select></div>
      <div class="field"><label for="job-host">Host</label>
        <select id="job-host" name="host" required>
          ${targets.map((host) => html`<option value=${host}>${host}</option>`)}
        </select></div>
      <fieldset key=${type.name}><legend>Parameters of ${type.name}</legend>
        <${SchemaFields} prefix="params" schema=${type.params_schema} />
      </fieldset>
      <details><summary>Options</summary>
        <${SchemaFields} prefix="options" schema=${requestSchema} />
      </details>
      <${ErrorNote} error=${failure} />
      <button type="submit" id="submit-job" disabled=${busy}>Start ${type.name} on the host</button>
    </form>
  </section>`;
}
