/* phenokg explorer: search, term and disease views with a Cytoscape.js neighbourhood graph, evidence
   thumbnails, a diagnosis page, image retrieval and training jobs. Plain DOM and ES modules, no build step:
   explore-core (helpers, API client, autocomplete), explore-graph, explore-browse (term and disease cards),
   explore-evidence, explore-diagnosis, explore-retrieval, explore-jobs. This file routes between them. */

import { $, TOKEN_KEY, showStatus } from "./explore-core.js";
import { setupSearch, showDisease, showHome, showTerm } from "./explore-browse.js";
import { setupDiagnosis, showDiagnosis } from "./explore-diagnosis.js";
import { loadJobs, setupJobs } from "./explore-jobs.js";
import { setupRetrieval } from "./explore-retrieval.js";

function showTab(name) {
  for (const v of document.querySelectorAll(".view")) v.hidden = v.id !== name;
  for (const a of document.querySelectorAll(".tabs a[data-tab]")) a.classList.toggle("active", a.dataset.tab === name);
}

function route() {
  const [path, query = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const [kind, ...rest] = decodeURIComponent(path).split("/");
  const id = rest.join("/");
  showStatus("");
  if (kind === "retrieval") { showTab("retrieval"); return; }
  if (kind === "jobs") { showTab("jobs"); loadJobs(); return; }
  if (kind === "diagnosis") { showTab("diagnosis"); showDiagnosis(new URLSearchParams(query)); return; }
  showTab("browse");
  if (kind === "term" && id) showTerm(id);
  else if (kind === "disease" && id) showDisease(id);
  else showHome();
}

function setupToken() {
  const input = $("#token");
  input.value = localStorage.getItem(TOKEN_KEY) || "";
  input.addEventListener("change", () => {
    if (input.value) localStorage.setItem(TOKEN_KEY, input.value.trim());
    else localStorage.removeItem(TOKEN_KEY);
  });
}

setupSearch();
setupToken();
setupDiagnosis();
setupRetrieval();
setupJobs();
window.addEventListener("hashchange", route);
route();
