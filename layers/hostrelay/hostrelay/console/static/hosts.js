// Hosts: state, versions, certificates, tags and running jobs; enroll and revoke for admins.
import { useEffect, useRef, useState } from "./vendor-htm-preact.js";
import { get, post, del, patch, query } from "./api.js";
import { html, Badge, ErrorNote, Time, may, useLoad } from "./ui.js";

export const HOSTS_RENDERED = "hostrelay:hosts-rendered";

function tagText(tags) {
  return Object.entries(tags || {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, value]) => `${key}=${value}`);
}

// "role=dc site:north" → {role: "dc", site: "north"}: split at the first "=" or ":" of each
// word. The API judges the keys and values (domain/tags.py) and its 422 names what is wrong.
export function parseTags(text) {
  const tags = {};
  for (const word of text.split(/[\s,]+/).filter(Boolean)) {
    const at = word.search(/[=:]/);
    tags[at > 0 ? word.slice(0, at) : word] = at > 0 ? word.slice(at + 1) : "";
  }
  return tags;
}

// GET /v1/hosts?tag=k:v&tag=k2:v2: hosts carrying every tag of the filter.
async function loadHosts(filter) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(parseTags(filter))) search.append("tag", `${key}:${value}`);
  const text = search.toString();
  return get(`/v1/hosts${text ? `?${text}` : ""}`);
}

// IN_PROGRESS jobs of one host: the host/state index answers exactly (a table-wide state
// filter could stop on a page that holds none of them).
async function runningJobs(host) {
  let count = 0;
  let token = null;
  do {
    const page = await get(`/v1/jobs${query({ host, state: "IN_PROGRESS", limit: 200, next_token: token })}`);
    count += page.jobs.length;
    token = page.next_token;
  } while (token);
  return count;
}

const COUNT_CONCURRENCY = 6;

async function loadRunning(names) {
  const counts = {};
  const queue = [...names];
  const worker = async () => {
    while (queue.length) {
      const name = queue.shift();
      counts[name] = await runningJobs(name);
    }
  };
  await Promise.all(Array.from({ length: Math.min(COUNT_CONCURRENCY, queue.length) }, worker));
  return counts;
}

function Countdown({ until }) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);
  const left = Math.max(0, Math.floor((new Date(until).getTime() - now) / 1000));
  if (left === 0) return html`<span class="badge badge-expired">expired</span>`;
  const text = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
  return html`<span class="countdown" role="timer">expires in ${text}</span>`;
}

function EnrollPanel({ onEnrolled }) {
  const [offer, setOffer] = useState(null);
  const [error, setError] = useState(null);
  const [copied, setCopied] = useState(false);
  async function submit(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const roles = form.elements.roles.value.split(/[\s,]+/).filter(Boolean);
    const tags = parseTags(form.elements.tags.value);
    setError(null);
    try {
      const body = { host: form.elements.host.value.trim() };
      if (roles.length) body.roles = roles;
      if (Object.keys(tags).length) body.tags = tags;
      setOffer(await post("/v1/enrollments", body));
      setCopied(false);
      form.reset();
      onEnrolled();
    } catch (failure) {
      setError(failure);
    }
  }
  async function copy() {
    try {
      await navigator.clipboard.writeText(offer.command);
      setCopied(true);
    } catch {
      document.getElementById("enroll-command").select();
    }
  }
  return html`<section class="panel" aria-labelledby="enroll-title">
    <h2 id="enroll-title">Enroll a host</h2>
    <form id="enroll" class="inline" onSubmit=${submit}>
      <label>Host name <input name="host" required pattern="[A-Za-z0-9]([A-Za-z0-9\\-]{0,61}[A-Za-z0-9])?" maxlength="63" /></label>
      <label>Roles <input name="roles" placeholder="e.g. dc, agent" /></label>
      <label>Tags <input name="tags" placeholder="e.g. role=dc site=north" /></label>
      <button type="submit">Create enrollment</button>
    </form>
    <${ErrorNote} error=${error} />
    ${offer && html`<div class="offer" id="enroll-offer">
      <p>Paste this as root on <strong>${offer.host}</strong>. It works once; it is shown only now.</p>
      <textarea id="enroll-command" readonly rows="3" aria-label="Enrollment command" value=${offer.command}></textarea>
      <div class="row">
        <button type="button" id="copy-command" onClick=${copy}>${copied ? "Copied" : "Copy command"}</button>
        <${Countdown} until=${offer.expires_at} />
        <button type="button" class="secondary" onClick=${() => setOffer(null)}>Done (forget it)</button>
      </div>
    </div>`}
  </section>`;
}

// Admins edit a host's tags as "key=value" words; saving sends a JSON merge patch (new or
// changed tags, removed ones as null), so a concurrent change of other tags is kept.
function TagEditor({ host, tags, onSaved }) {
  const [editing, setEditing] = useState(false);
  const [error, setError] = useState(null);
  const field = useRef(null);
  useEffect(() => {
    if (editing && field.current) field.current.focus();
  }, [editing]);
  if (!editing) {
    return html`<button type="button" class="secondary edit-tags" aria-label=${`Edit tags of ${host}`} onClick=${() => { setError(null); setEditing(true); }}>Edit tags</button>`;
  }
  async function save(event) {
    event.preventDefault();
    const wanted = parseTags(event.currentTarget.elements.tags.value);
    const change = { ...wanted };
    for (const key of Object.keys(tags || {})) if (!(key in wanted)) change[key] = null;
    try {
      await patch(`/v1/hosts/${encodeURIComponent(host)}`, { tags: change });
      setEditing(false);
      onSaved();
    } catch (failure) {
      setError(failure);
    }
  }
  return html`<form class="tag-editor" aria-label=${`Tags of ${host}`} onSubmit=${save}>
    <label>Tags of ${host} <input name="tags" ref=${field} value=${tagText(tags).join(" ")} placeholder="key=value key2=value2" /></label>
    <button type="submit">Save tags</button>
    <button type="button" class="secondary" onClick=${() => setEditing(false)}>Cancel</button>
    <${ErrorNote} error=${error} />
  </form>`;
}

function RevokeButton({ host, onRevoked }) {
  const [asking, setAsking] = useState(false);
  const [error, setError] = useState(null);
  const keep = useRef(null);
  useEffect(() => {
    // Keyboard users land on the safe choice of the confirmation.
    if (asking && keep.current) keep.current.focus();
  }, [asking]);
  if (!asking) {
    return html`<button type="button" class="danger" onClick=${() => setAsking(true)}>Revoke…</button>`;
  }
  async function revoke() {
    try {
      await del(`/v1/hosts/${encodeURIComponent(host)}`);
      setAsking(false);
      onRevoked();
    } catch (failure) {
      setError(failure);
    }
  }
  return html`<div class="confirm" role="alertdialog" aria-label=${`Revoke ${host}?`}>
    <p>Revoke <strong>${host}</strong>? Its certificate stops working; it gets no more jobs until re-enrolled.</p>
    <button type="button" class="danger" onClick=${revoke}>Revoke ${host}</button>
    <button type="button" class="secondary" ref=${keep} onClick=${() => setAsking(false)}>Keep ${host}</button>
    <${ErrorNote} error=${error} />
  </div>`;
}

export function HostsPage({ me }) {
  const [tag, setTag] = useState("");
  const { data, error, reload } = useLoad(() => loadHosts(tag), [tag], { every_ms: 10000 });
  const live = data ? data.hosts.filter((host) => host.state !== "revoked").map((host) => host.name) : [];
  const running = useLoad(() => (data ? loadRunning(live) : Promise.resolve({})), [data]);
  const admin = may(me, "admin");
  useEffect(() => {
    // A User Timing mark: bench/console.py reads when the list first showed data.
    if (data && !performance.getEntriesByName(HOSTS_RENDERED).length) performance.mark(HOSTS_RENDERED);
  }, [data]);
  return html`<section>
    <h1>Hosts</h1>
    <form class="inline filters" onSubmit=${(event) => { event.preventDefault(); setTag(event.currentTarget.elements.tag.value.trim()); }}>
      <label>Tags <input name="tag" placeholder="key:value key2:value2" /></label>
      <button type="submit">Filter</button>
      ${tag && html`<button type="button" class="secondary" onClick=${() => setTag("")}>Clear</button>`}
    </form>
    <${ErrorNote} error=${error} />
    ${data && html`<div class="table-wrap"><table id="hosts">
      <caption>${data.hosts.length} host${data.hosts.length === 1 ? "" : "s"}${tag ? ` tagged ${tag}` : ""}</caption>
      <thead><tr><th scope="col">Host</th><th scope="col">State</th><th scope="col">Last seen</th><th scope="col">Relay</th><th scope="col">Certificate expires</th><th scope="col">Tags</th><th scope="col">Running jobs</th>${admin && html`<th scope="col"><span class="sr-only">Actions</span></th>`}</tr></thead>
      <tbody>
        ${data.hosts.map((host) => html`<tr data-host=${host.name}>
          <th scope="row"><a href=${`#/jobs?host=${encodeURIComponent(host.name)}`}>${host.name}</a></th>
          <td><${Badge} state=${host.state} /></td>
          <td><${Time} value=${host.last_seen} /></td>
          <td>${host.relay_version || html`<span class="muted">—</span>`}</td>
          <td><${Time} value=${host.cert_expires_at} /></td>
          <td class="tags">${tagText(host.tags).map((text) => html`<span class="tag">${text}</span> `)}${admin && host.state !== "revoked" && html`<${TagEditor} host=${host.name} tags=${host.tags} onSaved=${reload} />`}</td>
          <td class="running">${host.state === "revoked" ? html`<span class="muted">—</span>` : running.data && host.name in running.data ? running.data[host.name] : html`<span class="muted">…</span>`}</td>
          ${admin && html`<td>${host.state !== "revoked" && html`<${RevokeButton} host=${host.name} onRevoked=${reload} />`}</td>`}
        </tr>`)}
      </tbody>
    </table></div>`}
    ${admin && html`<${EnrollPanel} onEnrolled=${reload} />`}
  </section>`;
}
