// Fleet runs: the paged list, the start form, and one run's progress, targets and cancel.
import { useEffect, useRef, useState } from "./vendor-htm-preact.js";
import { ApiError, get, post, query } from "./api.js";
import { html, Badge, ErrorNote, KeyValues, Time, may, useLoad } from "./ui.js";
import { SchemaFields, readFields } from "./schema-form.js";
import { mayStartJobs } from "./jobs.js";
import { parseTags } from "./hosts.js";

const PAGE_SIZE = 25;
const TARGET_PAGE_SIZE = 100;
const RUN_POLL_MS = 1000;
// Target states (docs/runs.md), and the job states an in-flight target's job may be in.
const TARGET_STATES = ["PENDING", "IN_FLIGHT", "QUEUED", "DISPATCHED", "IN_PROGRESS", "SUCCEEDED", "FAILED", "TIMED_OUT", "REJECTED", "EXPIRED", "CANCELED", "SKIPPED"];
const NOT_DONE = new Set(["PENDING", "IN_FLIGHT"]);
const TARGET_OPEN = new Set(["PENDING", "IN_FLIGHT", "QUEUED", "DISPATCHED", "IN_PROGRESS"]);

// The API's rule (RunService.cancel): an operator (admins too) cancels any run, any other
// token (a service token) the runs it started; a reader is offered nothing.
function mayCancelRun(me, run) {
  return may(me, "operator") || Boolean(me && me.label && run.created_by === me.label);
}

function progressOf(run) {
  const done = Object.entries(run.counts).filter(([state]) => !NOT_DONE.has(state)).reduce((sum, [, n]) => sum + n, 0);
  return { done, inFlight: run.in_flight, failed: run.errors, total: run.total };
}

function Progress({ run }) {
  const { done, inFlight, failed, total } = progressOf(run);
  return html`<span class="run-progress">
    <progress max=${total || 1} value=${done} aria-label=${`${done} of ${total} targets done`}></progress>
    <span>${done} done · ${inFlight} in flight · ${failed} failed of ${total}</span>
  </span>`;
}

function selectorText(targets) {
  const words = [...(targets.hosts || [])];
  for (const [key, value] of Object.entries(targets.tags || {})) words.push(`${key}=${value}`);
  return words.join(" ") || "—";
}

export function RunsPage({ me }) {
  const [pages, setPages] = useState([null]); // next_token of each page seen; null = first
  const token = pages[pages.length - 1];
  const { data, error } = useLoad(() => get(`/v1/runs${query({ limit: PAGE_SIZE, next_token: token })}`), [token], {
    every_ms: 5000,
  });
  return html`<section>
    <h1>Runs</h1>
    ${mayStartJobs(me) && html`<p><a class="button" href="#/runs/new" id="start-run">Start a run</a></p>`}
    <${ErrorNote} error=${error} />
    ${data && html`<div class="table-wrap"><table id="runs">
      <thead><tr><th scope="col">Run</th><th scope="col">Type</th><th scope="col">Targets</th><th scope="col">State</th><th scope="col">Progress</th><th scope="col">Created</th><th scope="col">By</th></tr></thead>
      <tbody>
        ${data.runs.map((run) => html`<tr data-run=${run.id}>
          <th scope="row"><a href=${`#/runs/${run.id}`} class="mono">${run.id}</a></th>
          <td>${run.type}</td><td>${selectorText(run.targets)}</td><td><${Badge} state=${run.state} /></td>
          <td><${Progress} run=${run} /></td><td><${Time} value=${run.created_at} /></td><td>${run.created_by}</td>
        </tr>`)}
        ${data.runs.length === 0 && html`<tr><td colspan="7" class="muted">No runs on this page.</td></tr>`}
      </tbody>
    </table></div>
    <nav class="pager" aria-label="Pages">
      <button type="button" class="secondary" disabled=${pages.length === 1} onClick=${() => setPages(pages.slice(0, -1))}>Previous</button>
      <span>Page ${pages.length}</span>
      <button type="button" class="secondary" disabled=${!data.next_token} onClick=${() => setPages([...pages, data.next_token])}>Next</button>
    </nav>`}
  </section>`;
}

function CancelRunButton({ run, onCanceled }) {
  const [asking, setAsking] = useState(false);
  const [error, setError] = useState(null);
  const keep = useRef(null);
  useEffect(() => {
    // Keyboard users land on the safe choice of the confirmation.
    if (asking && keep.current) keep.current.focus();
  }, [asking]);
  if (run.stopping === "CANCELED") return html`<p><button type="button" class="danger" disabled>Cancel requested</button></p>`;
  if (!asking) return html`<p><button type="button" class="danger" id="cancel-run" onClick=${() => setAsking(true)}>Cancel run…</button></p>`;
  async function cancel() {
    setError(null);
    try {
      await post(`/v1/runs/${encodeURIComponent(run.id)}/cancel`);
      setAsking(false);
      onCanceled();
    } catch (failure) {
      setError(failure);
    }
  }
  const name = `${run.type} run ${run.id}`;
  return html`<div class="confirm" role="alertdialog" aria-label=${`Cancel ${name}?`}>
    <p>Cancel the <strong>${name}</strong>? Targets not started end CANCELED; running jobs are canceled.</p>
    <button type="button" class="danger" id="confirm-cancel-run" onClick=${cancel}>Cancel ${run.id}</button>
    <button type="button" class="secondary" ref=${keep} onClick=${() => setAsking(false)}>Keep it running</button>
    <${ErrorNote} error=${error} />
  </div>`;
}

function TargetsTable({ id, open }) {
  const [state, setState] = useState("");
  const [pages, setPages] = useState([null]);
  const token = pages[pages.length - 1];
  const { data, error } = useLoad(
    () => get(`/v1/runs/${encodeURIComponent(id)}/targets${query({ state, limit: TARGET_PAGE_SIZE, next_token: token })}`),
    [id, state, token],
    // A page read just before the run ended may still show open targets: follow it until
    // they end too, not only while the run is open.
    { every_ms: RUN_POLL_MS, keepPolling: (page) => open || !page || page.targets.some((target) => TARGET_OPEN.has(target.state)) },
  );
  return html`<section aria-labelledby="targets-title">
    <h2 id="targets-title">Targets</h2>
    <form class="inline filters" id="target-filters" onSubmit=${(event) => { event.preventDefault(); setState(event.currentTarget.elements.state.value); setPages([null]); }}>
      <label>State <select name="state" value=${state}>
        <option value="">any</option>
        ${TARGET_STATES.map((name) => html`<option value=${name}>${name}</option>`)}
      </select></label>
      <button type="submit">Filter</button>
    </form>
    <${ErrorNote} error=${error} />
    ${data && html`<div class="table-wrap"><table id="run-targets">
      <thead><tr><th scope="col">Host</th><th scope="col">State</th><th scope="col">Job</th><th scope="col">Started</th><th scope="col">Finished</th><th scope="col">Error</th></tr></thead>
      <tbody>
        ${data.targets.map((target) => html`<tr data-host=${target.host}>
          <th scope="row">${target.host}</th>
          <td><${Badge} state=${target.state} /></td>
          <td>${target.job_id ? html`<a href=${`#/jobs/${target.job_id}`} class="mono">${target.job_id}</a>` : html`<span class="muted">—</span>`}</td>
          <td><${Time} value=${target.started_at} /></td><td><${Time} value=${target.finished_at} /></td>
          <td>${target.error ? html`<span class="error-text"><strong>${target.error.code}</strong>: ${target.error.message}</span>` : html`<span class="muted">—</span>`}</td>
        </tr>`)}
        ${data.targets.length === 0 && html`<tr><td colspan="6" class="muted">No targets on this page${state ? ` in ${state}` : ""}.</td></tr>`}
      </tbody>
    </table></div>
    ${(pages.length > 1 || data.next_token) && html`<nav class="pager" aria-label="Target pages">
      <button type="button" class="secondary" disabled=${pages.length === 1} onClick=${() => setPages(pages.slice(0, -1))}>Previous</button>
      <span>Page ${pages.length}</span>
      <button type="button" class="secondary" disabled=${!data.next_token} onClick=${() => setPages([...pages, data.next_token])}>Next</button>
    </nav>`}`}
  </section>`;
}

export function RunDetailPage({ me, id }) {
  const { data: run, error, reload } = useLoad(() => get(`/v1/runs/${encodeURIComponent(id)}`), [id], {
    every_ms: RUN_POLL_MS,
    keepPolling: (current) => !current || current.state === "IN_PROGRESS",
  });
  if (error && !run) return html`<${ErrorNote} error=${error} />`;
  if (!run) return html`<p class="loading">Loading run…</p>`;
  const open = run.state === "IN_PROGRESS";
  return html`<section>
    <p><a href="#/runs">← Runs</a></p>
    <h1>${run.type} run <span id="run-state"><${Badge} state=${run.state} /></span>${run.stopping && html` <span class="muted">stopping: ${run.stopping}</span>`}</h1>
    <p class="mono muted">${run.id}</p>
    <p id="run-progress"><${Progress} run=${run} /></p>
    ${mayCancelRun(me, run) && open && html`<${CancelRunButton} run=${run} onCanceled=${reload} />`}
    ${run.reason && html`<p id="run-reason"><strong>Reason:</strong> ${run.reason}</p>`}
    <${KeyValues} entries=${[
      ["Targets", selectorText(run.targets)],
      ["Max concurrency", `${run.max_concurrency} (window ${run.window})`],
      ["Max errors", `${run.max_errors} (limit ${run.error_limit})`],
      ["Timeout", `${run.timeout_s} s`],
      ["Created by", run.created_by],
      ["Created", html`<${Time} value=${run.created_at} />`],
      ["Finished", run.finished_at ? html`<${Time} value=${run.finished_at} />` : null],
    ]} />
    <${TargetsTable} id=${run.id} open=${open} />
    <details><summary>Params</summary><pre class="json">${JSON.stringify(run.params, null, 2)}</pre></details>
  </section>`;
}

async function loadRunForm() {
  const [openapi, types] = await Promise.all([get("/v1/openapi.json"), get("/v1/job-types")]);
  return {
    request: openapi.components.schemas.RunCreateRequest,
    types: types.job_types.filter((type) => type.runs_in !== "cloud"),
  };
}

// Options of POST /v1/runs generated from its schema; the two limits (a number or "N%") and
// the targets have their own inputs below.
const RUN_OPTIONS = ["timeout_s", "deliver_by", "continuous", "expired_counts_as_error", "idempotency_key"];

// "10" → 10, "10%" → "10%": the API judges either (and says what is wrong in its 422).
function limitValue(text) {
  const value = text.trim();
  if (!value) return undefined;
  return /^\d+$/.test(value) ? Number(value) : value;
}

export function NewRunPage({ me }) {
  const { data, error } = useLoad(loadRunForm, []);
  const [typeName, setTypeName] = useState("ping");
  const [failure, setFailure] = useState(null);
  const [busy, setBusy] = useState(false);
  if (!mayStartJobs(me)) return html`<p class="error" role="alert">Not allowed: starting runs needs the operator or service scope.</p>`;
  if (error) return html`<${ErrorNote} error=${error} />`;
  if (!data) return html`<p class="loading">Loading the job types…</p>`;
  const type = data.types.find((candidate) => candidate.name === typeName) || data.types[0];
  const optionsSchema = { ...data.request, required: [], properties: Object.fromEntries(RUN_OPTIONS.filter((name) => data.request.properties[name]).map((name) => [name, data.request.properties[name]])) };
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
    const body = {
      type: type.name,
      params: params.values,
      targets: { hosts: form.elements.hosts.value.split(/[\s,]+/).filter(Boolean), tags: parseTags(form.elements.tags.value) },
      ...options.values,
    };
    for (const name of ["max_concurrency", "max_errors"]) {
      const value = limitValue(form.elements[name].value);
      if (value !== undefined) body[name] = value;
    }
    setBusy(true);
    setFailure(null);
    try {
      const run = await post("/v1/runs", body);
      location.hash = `#/runs/${run.id}`;
    } catch (caught) {
      setFailure(caught);
    } finally {
      setBusy(false);
    }
  }
  return html`<section>
    <h1>Start a run</h1>
    <form id="new-run" class="stacked" onSubmit=${submit}>
      <div class="field"><label for="run-type">Type</label>
        <select id="run-type" name="type" value=${type.name} onChange=${(event) => { setTypeName(event.currentTarget.value); setFailure(null); }}>
          ${data.types.map((candidate) => html`<option value=${candidate.name}>${candidate.name}</option>`)}
        </select></div>
      <div class="field"><label for="run-tags">Tags</label>
        <input id="run-tags" name="tags" placeholder="e.g. role=dc site=north" spellcheck="false" />
        <small>hosts carrying every tag</small></div>
      <div class="field"><label for="run-hosts">Hosts</label>
        <input id="run-hosts" name="hosts" placeholder="e.g. dc01 dc02" spellcheck="false" />
        <small>by name, besides the tagged ones</small></div>
      <div class="field"><label for="run-max-concurrency">Max concurrency</label>
        <input id="run-max-concurrency" name="max_concurrency" placeholder="10" pattern="\\d{1,4}%?" spellcheck="false" />
        <small>${data.request.properties.max_concurrency.description} · default 10</small></div>
      <div class="field"><label for="run-max-errors">Max errors</label>
        <input id="run-max-errors" name="max_errors" placeholder="0" pattern="\\d{1,4}%?" spellcheck="false" />
        <small>${data.request.properties.max_errors.description} · default 0</small></div>
      <fieldset key=${type.name}><legend>Parameters of ${type.name}</legend>
        <${SchemaFields} prefix="params" schema=${type.params_schema} />
      </fieldset>
      <details><summary>Options</summary>
        <${SchemaFields} prefix="options" schema=${optionsSchema} />
      </details>
      <${ErrorNote} error=${failure} />
      <button type="submit" id="submit-run" disabled=${busy}>Start ${type.name} on the targets</button>
    </form>
  </section>`;
}
