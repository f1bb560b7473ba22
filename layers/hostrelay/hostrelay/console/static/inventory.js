// Inventory: counts by kind, and a searchable list of entities with their attributes and source.
import { useState } from "./vendor-htm-preact.js";
import { get, query } from "./api.js";
import { html, ErrorNote, KeyValues, Time, useLoad } from "./ui.js";

function EntityDetail({ id, connector, connectorName }) {
  const { data, error } = useLoad(() => get(`/v1/inventory/entities/${encodeURIComponent(id)}${query({ connector })}`), [id, connector]);
  if (error) return html`<${ErrorNote} error=${error} />`;
  if (!data) return html`<p class="loading">Loading…</p>`;
  return html`<div class="panel" id="entity-detail">
    <h2>${data.name} <span class="muted">(${data.kind})</span></h2>
    <${KeyValues} entries=${[
      ["From connector", connectorName],
      ["DN", data.dn],
      ["First seen", html`<${Time} value=${data.first_seen} />`],
      ["Last seen", html`<${Time} value=${data.last_seen} />`],
      ["Deleted", data.deleted_at ? html`<${Time} value=${data.deleted_at} />` : "no"],
    ]} />
    <h3>Attributes</h3>
    <pre class="json">${JSON.stringify(data.attributes, null, 2)}</pre>
    ${Object.entries(data.relations || {}).map(([name, relation]) => html`<h3>${name} (${relation.total})</h3>
      <ul>${relation.items.map((item) => html`<li>${item.name || item.id}${item.kind ? ` (${item.kind})` : ""}${item.deleted ? " — deleted" : ""}</li>`)}</ul>`)}
  </div>`;
}

export function InventoryPage() {
  const [search, setSearch] = useState({ kind: "", q: "" });
  const [pages, setPages] = useState([null]);
  const [selected, setSelected] = useState(null);
  const token = pages[pages.length - 1];
  const counts = useLoad(() => get("/v1/inventory/counts"), []);
  const connectors = useLoad(() => get("/v1/connectors"), []);
  const connectorName = (id) => {
    const found = connectors.data && connectors.data.connectors.find((connector) => connector.id === id);
    return found ? found.name : id;
  };
  const entities = useLoad(() => get(`/v1/inventory/entities${query({ ...search, limit: 50, next_token: token })}`), [search, token]);
  function submit(event) {
    event.preventDefault();
    const form = event.currentTarget.elements;
    setSearch({ kind: form.kind.value, q: form.q.value.trim() });
    setPages([null]);
    setSelected(null);
  }
  const kinds = counts.data ? Object.entries(counts.data.by_kind) : [];
  return html`<section>
    <h1>Inventory</h1>
    <${ErrorNote} error=${counts.error} />
    ${counts.data && html`<ul class="counts" id="inventory-counts">
      ${kinds.length === 0 && html`<li class="muted">No entities yet: add a connector and run it.</li>`}
      ${kinds.map(([kind, count]) => html`<li><strong>${count}</strong> ${kind}</li>`)}
    </ul>`}
    <form class="inline filters" onSubmit=${submit}>
      <label>Kind <select name="kind"><option value="">any</option>${kinds.map(([kind]) => html`<option value=${kind}>${kind}</option>`)}</select></label>
      <label>Name starts with <input name="q" maxlength="200" /></label>
      <button type="submit">Search</button>
    </form>
    <${ErrorNote} error=${entities.error} />
    ${entities.data && html`<div class="table-wrap"><table id="entities">
      <thead><tr><th scope="col">Name</th><th scope="col">Kind</th><th scope="col">Connector</th><th scope="col">Last seen</th></tr></thead>
      <tbody>${entities.data.entities.map((entity) => html`<tr>
        <th scope="row"><button type="button" class="link" onClick=${() => setSelected(entity)}>${entity.name}</button></th>
        <td>${entity.kind}</td><td title=${entity.connector}>${connectorName(entity.connector)}</td><td><${Time} value=${entity.last_seen} /></td>
      </tr>`)}</tbody>
    </table></div>
    <nav class="pager" aria-label="Pages">
      <button type="button" class="secondary" disabled=${pages.length === 1} onClick=${() => setPages(pages.slice(0, -1))}>Previous</button>
      <span>Page ${pages.length}</span>
      <button type="button" class="secondary" disabled=${!entities.data.next_token} onClick=${() => setPages([...pages, entities.data.next_token])}>Next</button>
    </nav>`}
    ${selected && html`<${EntityDetail} id=${selected.id} connector=${selected.connector} connectorName=${connectorName(selected.connector)} />`}
  </section>`;
}
