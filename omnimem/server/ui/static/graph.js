// omnimem web UI: an entity's neighbourhood as an SVG you can expand. Plain DOM, a small force layout.
// Nodes and edges are focusable buttons (Tab, Enter); names are set with textContent only.
"use strict";
(() => {
  const box = document.getElementById("graph");
  if (!box || !window.omnimemUI) return;
  const { h, errorText } = window.omnimemUI;
  const NS = "http://www.w3.org/2000/svg";
  const memory = box.dataset.name;
  const panel = document.getElementById("edge-sources");
  const nodes = new Map();   // id -> {id, name, type, x, y, expanded}
  const edges = new Map();   // "a|b" (sorted) -> {a, b, triplets: Map(id -> triplet)}
  let selected = null;

  function svg(tag, attrs, ...children) {
    const el = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
    for (const c of children) el.append(c instanceof Node ? c : String(c));
    return el;
  }

  async function expand(id) {
    const near = nodes.get(id) || { x: 0, y: 0 };
    box.setAttribute("aria-busy", "true");
    try {
      const res = await fetch(`/m/${encodeURIComponent(memory)}/graph/data?id=${encodeURIComponent(id)}`,
        { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!res.ok) throw new Error(await errorText(res));
      const data = await res.json();
      // New neighbours on a circle around the node they came from (a half-circle facing away from the
      // first entity when expanding), then a few rounds of repulsion to keep them apart from the rest.
      const first = nodes.size === 0;
      const centerRow = data.nodes.find((n) => n.id === data.center);
      if (!nodes.has(data.center)) nodes.set(data.center, { ...centerRow, x: near.x, y: near.y, expanded: false });
      const fresh = data.nodes.filter((n) => !nodes.has(n.id));
      const radius = Math.max(150, fresh.length * 13);
      const away = Math.atan2(near.y, near.x), arc = Math.min(2 * Math.PI, Math.PI + fresh.length * 0.2);
      fresh.forEach((n, i) => {
        const a = first ? (2 * Math.PI * i) / fresh.length - Math.PI / 2 : away - arc / 2 + (arc * (i + 0.5)) / fresh.length;
        nodes.set(n.id, { ...n, x: near.x + radius * Math.cos(a), y: near.y + radius * Math.sin(a), expanded: false });
      });
      nodes.get(data.center).expanded = true;
      for (const e of data.edges) {
        const key = [e.source, e.target].sort().join("|");
        const edge = edges.get(key) || { a: e.source, b: e.target, triplets: new Map() };
        for (const t of e.triplets) edge.triplets.set(t.id, t);
        edges.set(key, edge);
      }
      if (!first && fresh.length) layout(120);
      draw(data.center);
      box.dataset.nodes = String(nodes.size);
    } catch (err) {
      box.replaceChildren(h("p", { class: "error" }, `Could not load the graph: ${err.message}`));
    } finally {
      box.removeAttribute("aria-busy");
    }
  }

  // Fruchterman-Reingold-like: repulsion between all nodes, springs along edges, a pull to the middle.
  function layout(rounds) {
    const list = [...nodes.values()];
    const k = 150;  // the preferred distance between neighbours
    for (let r = 0; r < rounds; r++) {
      const step = 8 * (1 - r / rounds) + 0.5;
      const force = new Map(list.map((n) => [n.id, { x: 0, y: 0 }]));
      for (let i = 0; i < list.length; i++) {
        for (let j = i + 1; j < list.length; j++) {
          const a = list[i], b = list[j];
          let dx = a.x - b.x, dy = a.y - b.y;
          const d2 = Math.max(dx * dx + dy * dy, 1), push = (k * k) / d2;
          dx *= push; dy *= push;
          force.get(a.id).x += dx; force.get(a.id).y += dy;
          force.get(b.id).x -= dx; force.get(b.id).y -= dy;
        }
      }
      for (const e of edges.values()) {
        const a = nodes.get(e.a), b = nodes.get(e.b);
        const dx = b.x - a.x, dy = b.y - a.y, d = Math.max(Math.hypot(dx, dy), 1), pull = (d - k) / d / 4;
        force.get(a.id).x += dx * pull; force.get(a.id).y += dy * pull;
        force.get(b.id).x -= dx * pull; force.get(b.id).y -= dy * pull;
      }
      for (const n of list) {
        const f = force.get(n.id);
        const len = Math.max(Math.hypot(f.x, f.y), 1e-9);
        n.x += (f.x / len) * Math.min(step, len);
        n.y += (f.y / len) * Math.min(step, len);
      }
    }
  }

  function activate(el, fn) {
    el.addEventListener("click", fn);
    el.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); fn(); }
    });
  }

  function draw(focusId) {
    const list = [...nodes.values()];
    const xs = list.map((n) => n.x), ys = list.map((n) => n.y);
    const padX = 200, padY = 50;  // room for the names beside the outermost nodes
    const minX = Math.min(...xs) - padX, minY = Math.min(...ys) - padY;
    const width = Math.max(Math.max(...xs) - minX + padX, 300), height = Math.max(Math.max(...ys) - minY + padY, 200);
    const root = svg("svg", { viewBox: `${minX} ${minY} ${width} ${height}`, width, height, role: "group",
      "aria-label": `Knowledge graph: ${nodes.size} entities, ${edges.size} edges` });
    for (const [key, e] of edges) {
      const a = nodes.get(e.a), b = nodes.get(e.b);
      const relations = [...new Set([...e.triplets.values()].map((t) => t.relation))];
      const label = relations.length > 2 ? `${relations.slice(0, 2).join(", ")} …` : relations.join(", ");
      const g = svg("g", { class: `edge${selected === key ? " selected" : ""}`, tabindex: 0, role: "button", "data-key": key,
        "aria-label": `${a.name} – ${relations.join(", ")} – ${b.name}: show the evidence` },
        svg("line", { x1: a.x, y1: a.y, x2: b.x, y2: b.y }),
        svg("text", { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 - 4, "text-anchor": "middle" }, label));
      activate(g, () => sources(key));
      root.append(g);
    }
    for (const n of list) {
      const center = n.id === box.dataset.center;
      const g = svg("g", { class: `node${center ? " center" : ""}${n.expanded ? " expanded" : ""}`, tabindex: 0, role: "button",
        "data-id": n.id, "data-expanded": n.expanded ? "true" : "false",
        "aria-label": `${n.name} (${n.type})${n.expanded ? ", expanded" : ": expand"}` },
        svg("circle", { cx: n.x, cy: n.y, r: center ? 16 : 11 }),
        svg("title", {}, `${n.name} (${n.type})${n.description ? `: ${n.description}` : ""}`),
        label(n, center));
      activate(g, () => expand(n.id));
      root.append(g);
    }
    const hadFocus = box.contains(document.activeElement);
    box.replaceChildren(root);
    const again = focusId && root.querySelector(`[data-id="${CSS.escape(focusId)}"]`);
    if (again && hadFocus) again.focus();
  }

  // A node's name beside it, on the side away from the first entity, so that names in a ring don't collide.
  function label(n, center) {
    const origin = nodes.get(box.dataset.center) || { x: 0, y: 0 };
    if (center) return svg("text", { x: n.x, y: n.y + 34, "text-anchor": "middle" }, n.name);
    const dx = n.x - origin.x, dy = n.y - origin.y;
    if (Math.abs(dx) < 30) return svg("text", { x: n.x, y: n.y + (dy >= 0 ? 30 : -18), "text-anchor": "middle" }, n.name);
    return svg("text", { x: n.x + (dx > 0 ? 16 : -16), y: n.y + 5, "text-anchor": dx > 0 ? "start" : "end" }, n.name);
  }

  async function sources(key) {
    selected = key;
    box.querySelectorAll(".edge").forEach((el) => el.classList.toggle("selected", el.dataset.key === key));
    const edge = edges.get(key);
    const triplets = [...edge.triplets.values()];
    const params = new URLSearchParams(triplets.map((t) => ["t", t.id]));
    panel.replaceChildren(h("p", { role: "status" }, "Loading the evidence…"));
    try {
      const res = await fetch(`/m/${encodeURIComponent(memory)}/graph/edge?${params}`,
        { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!res.ok) throw new Error(await errorText(res));
      const { items } = await res.json();
      panel.replaceChildren(
        h("h3", {}, `${nodes.get(edge.a).name} – ${nodes.get(edge.b).name}`),
        h("ul", { class: "facts" }, triplets.map((t) => h("li", { class: t.retired ? "fact retired" : "fact" },
          t.head, " ", h("span", { class: "relation" }, t.relation), " ", t.tail, t.retired ? " (retired)" : ""))),
        h("h4", {}, `Read from ${items.length} item${items.length === 1 ? "" : "s"}`),
        h("ol", { class: "turns" }, items.map((i) => h("li", { class: "turn" },
          h("p", { class: "meta" }, i.speaker ? h("strong", {}, i.speaker) : "", i.event_time ? ` · ${i.event_time.slice(0, 16).replace("T", " ")}` : "",
            ` · ${i.modality} · `, h("a", { href: `/m/${encodeURIComponent(memory)}/item?id=${encodeURIComponent(i.id)}` }, "Open")),
          h("p", { class: "text" }, i.text)))));
    } catch (err) {
      panel.replaceChildren(h("p", { class: "error" }, `Could not load the evidence: ${err.message}`));
    }
  }

  document.addEventListener("DOMContentLoaded", () => expand(box.dataset.center));
})();
