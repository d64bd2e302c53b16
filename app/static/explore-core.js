/* phenokg explorer, shared helpers: DOM building, the API client, status lines, links and the phenotype
   autocomplete used by the search box and the diagnosis page. Plain DOM; every text goes in via textContent. */

export const $ = (sel) => document.querySelector(sel);
export const TOKEN_KEY = "phenokg.apiToken";

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  return node;
}

export class ApiError extends Error {
  constructor(status, detail, retryAfter = null) { super(detail); this.status = status; this.retryAfter = retryAfter; }
}

export async function api(path, options = {}) {
  const headers = Object.assign({ Accept: "application/json" }, options.headers || {});
  const token = localStorage.getItem(TOKEN_KEY);
  if (token && options.method && options.method !== "GET") headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, Object.assign({}, options, { headers }));
  } catch (err) {
    throw new ApiError(0, `the service does not answer (${err.message})`);
  }
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : null;
  if (!response.ok) {
    const detail = body && (body.detail || body.title) ? (body.detail || body.title) : response.statusText;
    throw new ApiError(response.status, typeof detail === "string" ? detail : JSON.stringify(detail),
                       response.headers.get("Retry-After"));
  }
  return body;
}

export const postJson = (path, body) => api(path, {
  method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

/* A panel whose endpoint is missing (404) or not ready (503) says so instead of failing. */
export function unavailable(container, what, err) {
  const reason = err.status === 404 ? `${what} is not available on this server (404).`
    : err.status === 503 ? `${what} is not ready: ${err.message} (503).`
    : err.status === 401 || err.status === 403 ? `${err.message} (${err.status}): set the API token at the top right.`
    : `${what} failed: ${err.message}${err.status ? ` (${err.status})` : ""}.`;
  container.replaceChildren(el("p", { class: "notice", "data-unavailable": String(err.status), text: reason }));
}

export function showStatus(text) {
  const box = $("#status");
  box.textContent = text;
  box.hidden = !text;
}

export const termLink = (id, name) => el("a", { href: `#/term/${id}`, text: name || id });
export const diseaseLink = (id, name) => el("a", { href: `#/disease/${id}`, text: name || id });
export const pct = (f) => (f === null || f === undefined ? "" : `${Math.round(f * 100)}%`);

/* Type-ahead over GET /search (lexical: fast prefixes such as "pneu"): arrow keys move, Enter or a click picks,
   Escape closes. ``onPick(hit)`` gets ``{id, name}``. */
export function autocomplete(input, list, onPick, { mode = "lexical", limit = 12 } = {}) {
  let active = -1;
  let seq = 0;
  let timer = null;
  let hits = [];
  const items = () => [...list.querySelectorAll("li[data-id]")];
  const close = () => { list.hidden = true; active = -1; input.setAttribute("aria-expanded", "false"); };
  const highlight = (i) => {
    items().forEach((li, j) => li.setAttribute("aria-selected", String(i === j)));
    active = i;
  };
  const pick = (hit) => { close(); onPick(hit); };

  async function suggest() {
    const q = input.value.trim();
    if (!q) { close(); return; }
    const mine = ++seq;
    try {
      const body = await api(`/search?mode=${mode}&limit=${limit}&q=${encodeURIComponent(q)}`);
      if (mine !== seq) return;
      hits = body.hits;
      list.replaceChildren(...hits.map((h) => el("li", {
        role: "option", "data-id": h.id, onmousedown: (e) => { e.preventDefault(); pick(h); },
      }, el("span", { class: "id", text: h.id }), el("span", { class: "name", text: h.name }),
         h.field !== "name" && h.field !== "id" ? el("span", { class: "via", text: `${h.field}: ${h.matched}` }) : null)));
      if (!hits.length) list.replaceChildren(el("li", { class: "muted", text: `no phenotype matches “${q}”` }));
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
      highlight(hits.length ? 0 : -1);
    } catch (err) {
      list.replaceChildren(el("li", { class: "muted", text: `search failed: ${err.message}` }));
      list.hidden = false;
    }
  }
  input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(suggest, 120); });
  input.addEventListener("keydown", (e) => {
    const li = items();
    if (e.key === "ArrowDown" && li.length) { e.preventDefault(); highlight((active + 1) % li.length); }
    else if (e.key === "ArrowUp" && li.length) { e.preventDefault(); highlight((active - 1 + li.length) % li.length); }
    else if (e.key === "Enter") {
      e.preventDefault();
      const chosen = li[active] && hits.find((h) => h.id === li[active].dataset.id);
      if (chosen) pick(chosen); else suggest();
    } else if (e.key === "Escape") close();
  });
  input.addEventListener("blur", () => setTimeout(close, 150));
}
