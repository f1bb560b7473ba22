// The console's shell: sign-in, navigation and the hash router (no token ever in a URL).
import { render, useEffect, useState } from "./vendor-htm-preact.js";
import { api, onSignedOut, session } from "./api.js";
import { html, ErrorNote } from "./ui.js";
import { HostsPage } from "./hosts.js";
import { JobsPage, NewJobPage } from "./jobs.js";
import { JobDetailPage } from "./job-detail.js";
import { NewRunPage, RunsPage, RunDetailPage } from "./runs.js";
import { InventoryPage } from "./inventory.js";
import { ConnectorsPage } from "./connectors.js";
import { AuditPage } from "./audit.js";

const PAGES = [
  { path: "hosts", label: "Hosts" },
  { path: "jobs", label: "Jobs" },
  { path: "runs", label: "Runs" },
  { path: "inventory", label: "Inventory" },
  { path: "connectors", label: "Connectors" },
  { path: "audit", label: "Audit", scope: "admin" },
];

// `#/jobs/ID` or `#/jobs?host=dc01`: a path and filters, never a secret.
function currentRoute() {
  const [path, search = ""] = location.hash.replace(/^#\/?/, "").split("?", 2);
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { parts: parts.length ? parts : ["hosts"], params: new URLSearchParams(search) };
}

function SignIn({ reason, onSignedIn }) {
  const [error, setError] = useState(reason);
  const [busy, setBusy] = useState(false);
  async function submit(event) {
    event.preventDefault();
    const field = event.currentTarget.elements.token;
    const token = field.value.trim();
    if (!token) return;
    setBusy(true);
    try {
      const me = await api("GET", "/v1/whoami", undefined, token);
      session.signIn(token);
      field.value = "";
      onSignedIn(me);
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  }
  return html`<main class="signin">
    <h1>hostrelay console</h1>
    <form id="signin" onSubmit=${submit} autocomplete="off">
      <label for="token">API token</label>
      <input id="token" name="token" type="password" required autocomplete="off" spellcheck="false" autofocus />
      <p class="hint">Kept in this tab only (sessionStorage) and sent only in the Authorization header.</p>
      <button type="submit" disabled=${busy}>Sign in</button>
    </form>
    <${ErrorNote} error=${error} />
  </main>`;
}

function Page({ route, me }) {
  const [section, id] = route.parts;
  if (section === "jobs" && id === "new") return html`<${NewJobPage} me=${me} />`;
  if (section === "jobs" && id) return html`<${JobDetailPage} me=${me} id=${id} />`;
  if (section === "jobs") return html`<${JobsPage} me=${me} params=${route.params} />`;
  if (section === "runs" && id === "new") return html`<${NewRunPage} me=${me} />`;
  if (section === "runs" && id) return html`<${RunDetailPage} me=${me} id=${id} />`;
  if (section === "runs") return html`<${RunsPage} me=${me} />`;
  if (section === "inventory") return html`<${InventoryPage} me=${me} />`;
  if (section === "connectors") return html`<${ConnectorsPage} me=${me} />`;
  if (section === "audit") return html`<${AuditPage} me=${me} />`;
  return html`<${HostsPage} me=${me} />`;
}

function Console() {
  const [me, setMe] = useState(null);
  const [signInReason, setSignInReason] = useState(null);
  const [checking, setChecking] = useState(Boolean(session.token()));
  const [route, setRoute] = useState(currentRoute());

  useEffect(() => {
    const follow = () => setRoute(currentRoute());
    addEventListener("hashchange", follow);
    const stop = onSignedOut((failure) => {
      setMe(null);
      setSignInReason(failure);
    });
    if (session.token()) {
      api("GET", "/v1/whoami")
        .then(setMe, (failure) => setSignInReason(failure))
        .finally(() => setChecking(false));
    }
    return () => {
      removeEventListener("hashchange", follow);
      stop();
    };
  }, []);

  if (checking) return html`<p class="loading">Checking your session…</p>`;
  if (!me) return html`<${SignIn} reason=${signInReason} onSignedIn=${(who) => { setSignInReason(null); setMe(who); }} />`;

  function signOut() {
    session.signOut();
    setMe(null);
  }
  const pages = PAGES.filter((page) => !page.scope || me.may.includes(page.scope));
  return html`<div class="shell">
    <header>
      <a class="brand" href="#/hosts">hostrelay</a>
      <nav aria-label="Main">
        ${pages.map((page) => html`<a href=${`#/${page.path}`} aria-current=${route.parts[0] === page.path ? "page" : undefined}>${page.label}</a>`)}
      </nav>
      <span class="who" title=${`scopes: ${me.scopes.join(", ")}`}>${me.name} · ${me.scopes.join(", ")}</span>
      <button type="button" class="secondary" id="signout" onClick=${signOut}>Sign out</button>
    </header>
    <main><${Page} route=${route} me=${me} /></main>
  </div>`;
}

const root = document.getElementById("app");
root.textContent = "";
render(html`<${Console} />`, root);
