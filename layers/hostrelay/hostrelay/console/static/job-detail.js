// One job: its timeline, params, result, live output (polled about once a second) and cancel.
import { useEffect, useRef, useState } from "./vendor-htm-preact.js";
import { get, post } from "./api.js";
import { html, Badge, ErrorNote, KeyValues, Time, useLoad } from "./ui.js";
import { TERMINAL, mayStartJobs } from "./jobs.js";

const OUTPUT_POLL_MS = 1000;

function decodeChunk(data) {
  const bytes = Uint8Array.from(atob(data), (char) => char.charCodeAt(0));
  return bytes;
}

// Follows GET /v1/jobs/{id}/output?after_seq= until the API says the output is complete.
function useLiveOutput(id) {
  const [output, setOutput] = useState({ text: "", complete: false, error: null });
  useEffect(() => {
    let stopped = false;
    let timer = null;
    let afterSeq = -1;
    let attempt = null;
    let decoder = new TextDecoder();
    let text = "";
    async function poll() {
      try {
        const page = await get(`/v1/jobs/${encodeURIComponent(id)}/output?after_seq=${afterSeq}&limit=1000`);
        if (stopped) return;
        if (attempt !== null && page.attempt !== attempt) {
          text = "";
          decoder = new TextDecoder();
        }
        attempt = page.attempt;
        for (const chunk of page.chunks) text += decoder.decode(decodeChunk(chunk.data), { stream: true });
        afterSeq = page.next_seq;
        if (page.complete) text += decoder.decode();
        setOutput({ text, complete: page.complete, error: null });
        if (!page.complete) timer = setTimeout(poll, page.chunks.length >= 1000 ? 0 : OUTPUT_POLL_MS);
      } catch (error) {
        if (stopped) return;
        setOutput((current) => ({ ...current, error }));
        if (error.status !== 401 && error.status !== 403 && error.status !== 404) timer = setTimeout(poll, OUTPUT_POLL_MS * 3);
      }
    }
    poll();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [id]);
  return output;
}

function OutputView({ id }) {
  const output = useLiveOutput(id);
  const box = useRef(null);
  useEffect(() => {
    const element = box.current;
    if (element) element.scrollTop = element.scrollHeight;
  }, [output.text]);
  return html`<section aria-labelledby="output-title">
    <h2 id="output-title">Output ${output.complete ? html`<span class="muted">(complete)</span>` : html`<span class="live" role="status">following…</span>`}</h2>
    <pre id="job-output" ref=${box} tabindex="0" aria-live="polite">${output.text || (output.complete ? "(no output)" : "")}</pre>
    <${ErrorNote} error=${output.error} />
  </section>`;
}

function cellText(value) {
  if (value === null || value === undefined) return "—";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

function RowsTable({ id, rows }) {
  const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))];
  return html`<div class="table-wrap"><table id=${id}>
    <thead><tr>${columns.map((column) => html`<th scope="col">${column}</th>`)}</tr></thead>
    <tbody>${rows.map((row) => html`<tr>${columns.map((column) => html`<td>${cellText(row[column])}</td>`)}</tr>`)}</tbody>
  </table></div>`;
}

function ResultView({ job }) {
  const result = job.result;
  if (!result) return null;
  const scalars = Object.entries(result).filter(([, value]) => value === null || typeof value !== "object");
  const nested = Object.entries(result).filter(([, value]) => value !== null && typeof value === "object");
  return html`<section aria-labelledby="result-title" id="job-result">
    <h2 id="result-title">Result</h2>
    ${job.type === "exec" && html`<${KeyValues} entries=${[
      ["Exit code", cellText(result.exit_code)],
      ["Signal", result.signal || "—"],
      ["CPU", result.cpu_s !== undefined ? `${result.cpu_s} s` : "—"],
      ["Wall time", result.wall_s !== undefined ? `${result.wall_s} s` : "—"],
      ["Peak memory", result.max_rss_kb !== undefined ? `${result.max_rss_kb} KiB` : "—"],
      ["OOM kills", cellText(result.oom_kills)],
    ]} />`}
    ${job.type !== "exec" && scalars.length > 0 && html`<${KeyValues} entries=${scalars.map(([key, value]) => [key, cellText(value)])} />`}
    ${nested.map(([key, value]) => Array.isArray(value) && value.length && value.every((row) => row && typeof row === "object" && !Array.isArray(row))
      ? html`<h3>${key}</h3><${RowsTable} id=${`result-${key}`} rows=${value} />`
      : html`<h3>${key}</h3><pre class="json">${JSON.stringify(value, null, 2)}</pre>`)}
  </section>`;
}

function Timeline({ job }) {
  const steps = [
    ["Queued", job.created_at],
    ["Started", job.started_at],
    ["Cancel requested", job.cancel_requested_at],
    [TERMINAL.has(job.state) ? job.state : "Finished", job.finished_at],
  ].filter(([, when]) => when);
  return html`<ol class="timeline">${steps.map(([label, when]) => html`<li><strong>${label}</strong> <${Time} value=${when} /></li>`)}</ol>`;
}

export function JobDetailPage({ me, id }) {
  const { data: job, error, reload } = useLoad(() => get(`/v1/jobs/${encodeURIComponent(id)}`), [id], {
    every_ms: 1000,
    keepPolling: (current) => !current || !TERMINAL.has(current.state),
  });
  const [cancelError, setCancelError] = useState(null);
  if (error && !job) return html`<${ErrorNote} error=${error} />`;
  if (!job) return html`<p class="loading">Loading job…</p>`;
  async function cancel() {
    setCancelError(null);
    try {
      await post(`/v1/jobs/${encodeURIComponent(id)}/cancel`);
      reload();
    } catch (failure) {
      setCancelError(failure);
    }
  }
  const canCancel = mayStartJobs(me) && !TERMINAL.has(job.state);
  return html`<section>
    <p><a href="#/jobs">← Jobs</a></p>
    <h1>${job.type} on ${job.host} <span id="job-state"><${Badge} state=${job.state} /></span></h1>
    <p class="mono muted">${job.id}</p>
    ${canCancel && html`<p><button type="button" class="danger" id="cancel-job" onClick=${cancel} disabled=${Boolean(job.cancel_requested_at)}>${job.cancel_requested_at ? "Cancel requested" : "Cancel job"}</button></p>`}
    <${ErrorNote} error=${cancelError} />
    <${KeyValues} entries=${[
      ["Created by", job.created_by],
      ["Attempt", `${job.attempt} of ${job.max_attempts}`],
      ["Timeout", `${job.timeout_s} s`],
      ["Deliver by", job.deliver_by ? html`<${Time} value=${job.deliver_by} />` : null],
    ]} />
    <h2>State history</h2>
    <${Timeline} job=${job} />
    ${job.error && html`<p class="error" role="alert" id="job-error"><strong>${job.error.code}</strong>: ${job.error.message}</p>`}
    <${ResultView} job=${job} />
    <${OutputView} id=${job.id} />
    <details><summary>Params</summary><pre class="json">${JSON.stringify(job.params, null, 2)}</pre></details>
  </section>`;
}
