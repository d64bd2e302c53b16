/* phenokg explorer, the neighbourhood graph (Cytoscape.js, vendored): nodes grouped by their relation to the
   centre (parents, children, typical and excluded diseases or phenotypes, evidence), each group a labelled box
   laid out as a grid as wide as the panel; the panel grows taller instead of shrinking the labels. */

import { $ } from "./explore-core.js";

let cy = null;
const COL_W = 190;  // a label wraps at 160 px: columns never overlap
const ROW_H = 72;   // a node and up to three lines of label
const GAP = 110;    // from a group's last row to the next group: its labels, the box padding, the next title
const MIN_HEIGHT = 460;
const MAX_ZOOM = 1.25;

const GRAPH_STYLE = [
  { selector: "node", style: {
      label: "data(label)", "font-size": 11, "text-wrap": "wrap", "text-max-width": 160, "text-valign": "bottom",
      "text-margin-y": 4, color: "#1d2733", "background-color": "#3d7cc9", width: 22, height: 22,
      "border-width": 2, "border-color": "#fff", "min-zoomed-font-size": 0 } },
  { selector: "node[kind = 'phenotype'][role = 'center'], node[kind = 'disease'][role = 'center']", style: {
      width: 38, height: 38, "font-size": 13, "font-weight": 700, "border-color": "#0b3d6e", "border-width": 3 } },
  { selector: "node[kind = 'disease']", style: { shape: "round-rectangle", "background-color": "#e07b39", width: 26, height: 20 } },
  { selector: "node[kind = 'evidence']", style: { shape: "round-tag", "background-color": "#7d5fb8" } },
  { selector: "node[role = 'excluded']", style: { "border-color": "#d64541", "border-width": 3 } },
  { selector: "node[kind = 'group']", style: {
      shape: "round-rectangle", "background-color": "#f2f5f9", "background-opacity": 0.7, "border-width": 1,
      "border-color": "#d9dee5", "text-valign": "top", "text-halign": "center", "text-margin-y": -4,
      "font-size": 12, "font-weight": 600, color: "#5f6b7a", padding: 14, events: "no", "text-max-width": 600,
      "text-background-color": "#ffffff", "text-background-opacity": 0.9, "text-background-padding": 3 } },
  { selector: "edge", style: { width: 2, "curve-style": "bezier", "target-arrow-shape": "triangle",
      "line-color": "#9aa3ad", "target-arrow-color": "#9aa3ad", "arrow-scale": 0.9 } },
  { selector: "edge[type = 'HAS_PHENOTYPE'], edge[type = 'SHOWS']", style: {
      "line-color": "#2e9e5b", "target-arrow-color": "#2e9e5b", width: 2.5 } },
  { selector: "edge[type = 'EXCLUDES'], edge[type = 'RULES_OUT']", style: {
      "line-color": "#d64541", "target-arrow-color": "#d64541", "line-style": "dashed", width: 3,
      "target-arrow-shape": "tee" } },
  { selector: "edge.many", style: { opacity: 0.35, width: 1.5 } },
  { selector: "node:selected", style: { "overlay-opacity": 0.15, "overlay-color": "#0b5394" } },
];

/* Top to bottom: parents, the centre, children, typical, excluded, evidence. */
const ORDER = ["parent", "center", "child", "typical", "excluded", "evidence"];
const groupOf = (role) => (role === "shows" || role === "rules_out" ? "evidence" : role);

/* Grid positions of every node, by group; the height the drawing needs at zoom 1. */
export function place(nodes, width) {
  const cols = Math.max(2, Math.floor((width - 40) / COL_W));
  const groups = new Map(ORDER.map((g) => [g, []]));
  nodes.forEach((n) => (groups.get(groupOf(n.role)) || groups.get("child")).push(n));
  const pos = {};
  let y = 0;
  for (const [name, list] of groups) {
    if (!list.length) continue;
    if (name === "center") { pos[list[0].id] = { x: 0, y }; y += GAP; continue; }
    const across = Math.min(cols, list.length);
    list.forEach((n, i) => {
      pos[n.id] = { x: ((i % cols) - (across - 1) / 2) * COL_W, y: y + Math.floor(i / cols) * ROW_H };
    });
    y += (Math.ceil(list.length / cols) - 1) * ROW_H + GAP;
  }
  return { pos, height: y };
}

/* At most three lines of a label under a node (the full name is in the lists beside the graph). */
const MAX_LABEL = 66;
const short = (text) => (text.length <= MAX_LABEL ? text : `${text.slice(0, MAX_LABEL - 1).trimEnd()}…`);

/* ``titles``: a group's box label by group name (parent, child, typical, excluded, evidence); a group without a
   title is drawn without a box. */
export function draw(graph, onTap, titles = {}) {
  const container = $("#graph");
  const { pos, height } = place(graph.nodes, container.clientWidth || 900);
  container.style.height = `${Math.max(MIN_HEIGHT, Math.ceil(height + 40))}px`;
  const present = new Set(graph.nodes.map((n) => groupOf(n.role)));
  const boxes = Object.entries(titles).filter(([g, t]) => t && present.has(g))
    .map(([g, t]) => ({ group: "nodes", data: { id: `group:${g}`, label: t, kind: "group", role: g } }));
  const boxed = new Set(boxes.map((b) => b.data.role));
  const many = graph.nodes.length > 30;
  const elements = [
    ...boxes,
    ...graph.nodes.map((n) => ({ group: "nodes", position: pos[n.id],
      data: Object.assign({}, n, { label: short(n.label), name: n.label },
                          boxed.has(groupOf(n.role)) ? { parent: `group:${groupOf(n.role)}` } : {}) })),
    ...graph.edges.map((e, i) => ({ group: "edges", classes: many ? "many" : "",
      data: Object.assign({ id: `e${i}` }, e) })),
  ];
  if (cy) cy.destroy();
  cy = cytoscape({ container, elements, style: GRAPH_STYLE, layout: { name: "preset", padding: 30 },
                   minZoom: 0.2, maxZoom: 3 });
  if (cy.zoom() > MAX_ZOOM) { cy.zoom(MAX_ZOOM); cy.center(); }
  cy.on("tap", "node", (evt) => { if (evt.target.data("kind") !== "group") onTap(evt.target.data()); });
  window.phenokgGraph = cy; // for tests and the console
}

export function openNode(data) {
  if (data.role === "center") return;
  if (data.kind === "phenotype") location.hash = `#/term/${data.id}`;
  else if (data.kind === "disease") location.hash = `#/disease/${data.id}`;
  else if (data.kind === "evidence") window.open(`/evidence/${encodeURIComponent(data.id)}/image`, "_blank");
}
