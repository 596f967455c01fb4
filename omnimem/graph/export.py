"""Export the M3KG (or a subgraph of it): GraphML, JSON, and a self-contained interactive HTML view.

M3KG-RAG (arXiv 2512.20136), "M3KG construction", result G = {entities, relations, triplets, entity
descriptions, items, links}: every export carries the triplets with their source items (the
coverage property), so each fact can be traced to its evidence outside omnimem too.

- **GraphML** (networkx): a directed multigraph; entity nodes (``kind="entity"``), item nodes
  (``kind="item"``), one edge per triplet (key = triplet id, ``sources`` = JSON list of item ids) and
  one ``kind="mention"`` edge per entity-item mention.
- **JSON**: ``{"entities", "items", "edges", "triplets"}``; each triplet with its ``sources``.
- **HTML**: one file, no network at view time: the data inline, a small force-directed layout in
  plain JS (no library), entities coloured by type, hover for description and source items, drag a
  node, drag the background to pan, wheel to zoom.

A subgraph is the ``hops``-neighbourhood (over triplet edges) of named entities, as in
:func:`select_subgraph`.
"""

from __future__ import annotations

import dataclasses
import html
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omnimem.errors import ConfigError, NotFound
from omnimem.graph.store import EntityRow, GraphStore, TripletRow
from omnimem.types import Item

if TYPE_CHECKING:
    import networkx as nx

__all__ = [
    "FORMATS", "Subgraph", "select_subgraph", "to_networkx", "write_graphml", "to_json", "to_html", "export_graph",
]  # fmt: skip

log = logging.getLogger(__name__)

FORMATS = ("graphml", "json", "html")
_TEXT_CHARS = 400  # characters of an item's text kept in GraphML / HTML
_TYPE_COLOURS = {
    "PERSON": "#e6194b", "ORG": "#4363d8", "GPE": "#3cb44b", "LOC": "#2e8b57", "FAC": "#9a6324",
    "NORP": "#f58231", "EVENT": "#911eb4", "WORK_OF_ART": "#f032e6", "PRODUCT": "#42d4f4", "DATE": "#808000",
    "TIME": "#aaaa55", "LANGUAGE": "#469990", "LAW": "#800000", "CONCEPT": "#a9a9a9",
}  # fmt: skip
_PALETTE = ("#bfef45", "#fabed4", "#dcbeff", "#ffd8b1", "#aaffc3", "#000075", "#ffe119", "#fffac8")


@dataclass(frozen=True)
class Subgraph:
    """Entities, the triplets among them (heads / tails as root ids) and the items they link to."""

    entities: list[EntityRow]  # root entities, in selection order
    triplets: list[TripletRow]  # triplets whose head and tail are both in ``entities``
    items: dict[str, Item]  # item id -> item, for every triplet source and mention
    mentions: dict[str, list[str]] = field(default_factory=dict)  # entity id -> item ids mentioning it
    seeds: tuple[str, ...] = ()  # the entity ids the neighbourhood grew from (empty: whole graph)


def select_subgraph(
    graph: GraphStore, entity: Sequence[str] = (), *, hops: int = 2, max_entities: int | None = 500
) -> Subgraph:
    """The ``hops``-hop neighbourhood of the entities named ``entity`` (every entity when empty).

    Names are matched by their canonical key (any type, merged entities as their root); an unknown
    name raises :class:`NotFound`. Rings are added nearest first; at most ``max_entities`` entities
    are kept (the last ring is cut, best-connected first).
    """
    if hops < 0:
        raise ConfigError(f"hops must be >= 0, got {hops}")
    if max_entities is not None and max_entities <= 0:
        raise ConfigError(f"max_entities must be positive or None, got {max_entities}")
    roots = graph.roots()
    root = lambda e: roots.get(e, e)  # noqa: E731
    seeds: list[str] = []
    for name in entity:
        found = graph.find_entities(name)
        if not found:
            raise NotFound(f"no entity named {name!r}; names are canonical (singular, no article): try `omnimem graph stats` or a JSON export to list them")  # fmt: skip
        seeds += [e.id for e in found]
    if seeds:
        chosen = list(dict.fromkeys(seeds))
        frontier = set(chosen)
        for _ in range(hops):
            ring = graph.neighbor_ids(sorted(frontier), hops=1) - set(chosen)
            if not ring:
                break
            if max_entities is not None and len(chosen) + len(ring) > max_entities:
                degree = graph.mention_counts(sorted(ring))
                ring = set(sorted(ring, key=lambda e: (-degree.get(e, 0), e))[: max_entities - len(chosen)])
            chosen += sorted(ring)
            frontier = ring
            if max_entities is not None and len(chosen) >= max_entities:
                break
        ents = {e.id: e for e in graph.entities(chosen)}
        entities = [ents[e] for e in chosen if e in ents]
    else:
        entities = graph.entities()
        if max_entities is not None and len(entities) > max_entities:
            log.warning("export: the graph has %d entities; keeping the first %d", len(entities), max_entities)
            entities = entities[:max_entities]
    wanted = {e.id for e in entities}
    members = [m for ms in graph.members(sorted(wanted)).values() for m in ms]
    triplets = []
    for t in graph.triplets(entity_ids=members) if seeds or max_entities else graph.triplets():
        head, tail = root(t.head), root(t.tail)
        if head in wanted and tail in wanted:
            triplets.append(dataclasses.replace(t, head=head, tail=tail))
    mentions: dict[str, list[str]] = {e: [] for e in wanted}
    for m in graph.mentions(entity_ids=members):
        bucket = mentions[root(m.entity_id)]
        if m.item_id not in bucket:
            bucket.append(m.item_id)
    item_ids = list(dict.fromkeys([s for t in triplets for s in t.sources] + [i for ids in mentions.values() for i in ids]))  # fmt: skip
    items = {item.id: item for item in graph.store.get(item_ids) if item is not None}
    return Subgraph(entities, triplets, items, mentions, tuple(dict.fromkeys(seeds)))


def _item_json(item: Item, chars: int | None = None) -> dict[str, Any]:
    out = {"id": item.id, "modality": item.modality, "text": item.text if chars is None else item.text[:chars]}
    for key in ("speaker", "source", "session", "episode", "event_time", "t_start", "t_end"):
        if getattr(item, key) is not None:
            out[key] = getattr(item, key)
    return out


def to_json(sub: Subgraph) -> dict[str, Any]:
    """The subgraph as JSON-ready data: entities, items, aggregated entity-entity edges, triplets."""
    names = {e.id: e.name for e in sub.entities}
    edges: dict[tuple[str, str], dict[str, Any]] = {}
    for t in sub.triplets:
        edge = edges.setdefault((t.head, t.tail), {"source": t.head, "target": t.tail, "relations": [], "triplets": []})
        edge["relations"].append(t.relation)
        edge["triplets"].append(t.id)
    return {
        "format": "omnimem-m3kg",
        "version": 1,
        "seeds": list(sub.seeds),
        "entities": [
            {
                "id": e.id,
                "name": e.name,
                "type": e.type,
                "aliases": list(e.aliases),
                "description": e.description,
                "items": sub.mentions.get(e.id, []),
            }
            for e in sub.entities
        ],  # fmt: skip
        "items": [_item_json(item) for item in sub.items.values()],
        "edges": list(edges.values()),
        "triplets": [
            {
                "id": t.id,
                "head": t.head,
                "head_name": names.get(t.head),
                "relation": t.relation,
                "tail": t.tail,
                "tail_name": names.get(t.tail),
                "sentence": t.sentence,
                "confidence": t.confidence,
                "sources": list(t.sources),
                "valid_from": t.valid_from,
                "valid_to": t.valid_to,
                "recorded_at": t.recorded_at,
                "retired_at": t.retired_at,
            }
            for t in sub.triplets
        ],  # fmt: skip
    }


def to_networkx(sub: Subgraph) -> nx.MultiDiGraph:
    """A directed multigraph with GraphML-safe attributes (scalars; lists as JSON strings)."""
    import networkx as nx

    g = nx.MultiDiGraph()
    for e in sub.entities:
        g.add_node(e.id, kind="entity", name=e.name, type=e.type, aliases=json.dumps(list(e.aliases), ensure_ascii=False), description=e.description or "")  # fmt: skip
    for item in sub.items.values():
        g.add_node(item.id, kind="item", modality=item.modality, text=item.text[:_TEXT_CHARS], source=item.source or "")  # fmt: skip
    for t in sub.triplets:
        g.add_edge(
            t.head, t.tail, key=t.id, kind="triplet", relation=t.relation, sentence=t.sentence,
            confidence=float(t.confidence), sources=json.dumps(list(t.sources)),
        )  # fmt: skip
    for eid, item_ids in sub.mentions.items():
        for item_id in item_ids:
            if item_id in sub.items:
                g.add_edge(eid, item_id, key=f"mention:{item_id}", kind="mention")
    return g


def write_graphml(sub: Subgraph, path: str | os.PathLike[str]) -> Path:
    import networkx as nx

    nx.write_graphml(to_networkx(sub), str(path))
    return Path(path)


def _colour(type_: str) -> str:
    return _TYPE_COLOURS.get(type_) or _PALETTE[sum(map(ord, type_)) % len(_PALETTE)]


def to_html(sub: Subgraph, *, title: str = "omnimem M3KG") -> str:
    """One self-contained HTML page (inline data, CSS and JS; nothing fetched) drawing ``sub``."""
    index = {e.id: k for k, e in enumerate(sub.entities)}
    nodes = []
    for e in sub.entities:
        items = [
            {"id": i, "text": sub.items[i].text[:160], "modality": sub.items[i].modality}
            for i in sub.mentions.get(e.id, [])[:6] if i in sub.items
        ]  # fmt: skip
        nodes.append({"name": e.name, "type": e.type, "description": e.description or "", "aliases": list(e.aliases)[:6], "items": items, "seed": e.id in sub.seeds})  # fmt: skip
    links: dict[tuple[int, int], dict[str, Any]] = {}
    for t in sub.triplets:
        a, b = index[t.head], index[t.tail]
        if a == b:
            continue
        link = links.setdefault((a, b), {"source": a, "target": b, "facts": []})
        if len(link["facts"]) < 6:
            link["facts"].append({"relation": t.relation, "sentence": t.sentence[:200], "sources": list(t.sources)[:4]})
    types = sorted({e.type for e in sub.entities})
    data = {"nodes": nodes, "links": list(links.values()), "colours": {t: _colour(t) for t in types}}
    payload = json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")  # no "</script>" or "<!--" in the block
    return _PAGE.replace("%TITLE%", html.escape(title)).replace("%DATA%", payload).replace("%SCRIPT%", _SCRIPT)


def export_graph(
    graph: GraphStore,
    *,
    format: str,
    output: str | os.PathLike[str],
    entity: Sequence[str] = (),
    hops: int = 2,
    max_entities: int | None = 500,
) -> Path:
    """Write the graph, or the ``hops``-neighbourhood of the entities named ``entity``, to ``output``.

    ``format``: ``"graphml"``, ``"json"`` or ``"html"`` (flags of ``omnimem graph export``).
    """
    if format not in FORMATS:
        raise ConfigError(f"unknown export format {format!r}; use one of {', '.join(FORMATS)}")
    sub = select_subgraph(graph, entity, hops=hops, max_entities=max_entities)
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    if format == "graphml":
        write_graphml(sub, path)
    elif format == "json":
        path.write_text(json.dumps(to_json(sub), ensure_ascii=False, indent=1), encoding="utf-8")
    else:
        title = "M3KG: " + (", ".join(entity) + f" ({hops} hops)" if entity else "whole graph")
        path.write_text(to_html(sub, title=title), encoding="utf-8")
    log.info("exported %d entities, %d triplets as %s to %s", len(sub.entities), len(sub.triplets), format, path)
    return path


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>%TITLE%</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<style>
html,body{margin:0;height:100%;font:13px system-ui,sans-serif;background:#fafafa;overflow:hidden}
#graph{width:100%;height:100%;display:block;cursor:grab}
#graph line{stroke:#999;stroke-opacity:.6}
#graph circle{stroke:#fff;stroke-width:1.5px;cursor:pointer}
#graph circle.seed{stroke:#000;stroke-width:3px}
#graph text{font-size:11px;pointer-events:none;fill:#222}
#tip{position:fixed;display:none;max-width:380px;background:#fff;border:1px solid #bbb;border-radius:4px;
 padding:6px 8px;box-shadow:0 2px 6px rgba(0,0,0,.2);pointer-events:none}
#tip .t{color:#666;font-size:11px}#tip li{margin:2px 0}
#legend{position:fixed;top:8px;left:8px;background:rgba(255,255,255,.9);padding:6px 8px;border-radius:4px}
#legend span{display:inline-block;width:10px;height:10px;border-radius:5px;margin-right:4px}
</style></head>
<body><svg id="graph"><g id="view"><g id="links"></g><g id="nodes"></g><g id="labels"></g></g></svg>
<div id="legend"><b>%TITLE%</b><div id="types"></div></div><div id="tip"></div>
<script id="data" type="application/json">%DATA%</script>
<script>%SCRIPT%</script></body></html>
"""

# A force-directed layout (repulsion between every pair, springs on links, a pull to the centre,
# cooling), run synchronously before the first paint so the page is complete on load.
_SCRIPT = r"""
window.onerror = function (msg) { document.documentElement.setAttribute("data-error", String(msg)); };
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var data = JSON.parse(document.getElementById("data").textContent);
  var nodes = data.nodes, links = data.links, n = nodes.length;
  var svg = document.getElementById("graph"), view = document.getElementById("view");
  var W = window.innerWidth || 1000, H = window.innerHeight || 700;
  var deg = new Array(n).fill(0);
  links.forEach(function (l) { deg[l.source]++; deg[l.target]++; });
  nodes.forEach(function (d, i) {  // golden-angle spiral: deterministic, no overlaps
    var r = 12 * Math.sqrt(i + 1), a = i * 2.399963;
    d.x = r * Math.cos(a); d.y = r * Math.sin(a); d.vx = 0; d.vy = 0; d.r = 5 + Math.min(10, 2 * Math.sqrt(deg[i]));
  });
  var K = Math.max(30, Math.min(90, 600 / Math.sqrt(n + 1)));
  function tick(alpha) {
    var i, j, a, b, dx, dy, d2, d, f;
    for (i = 0; i < n; i++) {
      a = nodes[i];
      for (j = i + 1; j < n; j++) {
        b = nodes[j]; dx = a.x - b.x; dy = a.y - b.y; d2 = dx * dx + dy * dy + 0.01;
        if (d2 > 250000) continue;
        f = alpha * K * K / d2; a.vx += dx * f; a.vy += dy * f; b.vx -= dx * f; b.vy -= dy * f;
      }
      a.vx -= a.x * 0.02 * alpha; a.vy -= a.y * 0.02 * alpha;
    }
    links.forEach(function (l) {
      a = nodes[l.source]; b = nodes[l.target]; dx = b.x - a.x; dy = b.y - a.y;
      d = Math.sqrt(dx * dx + dy * dy) + 0.01; f = alpha * (d - K) / d * 0.1;
      a.vx += dx * f; a.vy += dy * f; b.vx -= dx * f; b.vy -= dy * f;
    });
    nodes.forEach(function (p) {
      if (p.fixed) { p.vx = p.vy = 0; return; }
      var s = Math.sqrt(p.vx * p.vx + p.vy * p.vy), cap = 40;
      if (s > cap) { p.vx *= cap / s; p.vy *= cap / s; }
      p.x += p.vx; p.y += p.vy; p.vx *= 0.6; p.vy *= 0.6;
    });
  }
  for (var t = 0; t < 300; t++) tick(1 - t / 300);

  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    parent.appendChild(e); return e;
  }
  var lineEls = links.map(function (l) {
    return el("line", {"stroke-width": Math.min(4, l.facts.length)}, document.getElementById("links"));
  });
  var showLabels = n <= 120;
  var circleEls = nodes.map(function (d, i) {
    var c = el("circle", {r: d.r, fill: data.colours[d.type] || "#888", "data-i": i}, document.getElementById("nodes"));
    if (d.seed) c.setAttribute("class", "seed");
    return c;
  });
  var labelEls = nodes.map(function (d) {
    var e = el("text", {dx: d.r + 2, dy: 4}, document.getElementById("labels"));
    e.textContent = (showLabels || d.seed || deg[nodes.indexOf(d)] > 3) ? d.name : "";
    return e;
  });
  function draw() {
    links.forEach(function (l, k) {
      var a = nodes[l.source], b = nodes[l.target], e = lineEls[k];
      e.setAttribute("x1", a.x); e.setAttribute("y1", a.y); e.setAttribute("x2", b.x); e.setAttribute("y2", b.y);
    });
    nodes.forEach(function (d, i) {
      circleEls[i].setAttribute("cx", d.x); circleEls[i].setAttribute("cy", d.y);
      labelEls[i].setAttribute("x", d.x); labelEls[i].setAttribute("y", d.y);
    });
  }
  // fit the layout in the window
  var xs = nodes.map(function (d) { return d.x; }), ys = nodes.map(function (d) { return d.y; });
  var minX = Math.min.apply(null, xs.concat([0])) - 40, maxX = Math.max.apply(null, xs.concat([0])) + 40;
  var minY = Math.min.apply(null, ys.concat([0])) - 40, maxY = Math.max.apply(null, ys.concat([0])) + 40;
  var z = Math.min(W / (maxX - minX), H / (maxY - minY), 2), px = (W - z * (minX + maxX)) / 2, py = (H - z * (minY + maxY)) / 2;
  function transform() { view.setAttribute("transform", "translate(" + px + "," + py + ") scale(" + z + ")"); }
  transform(); draw();

  var legend = document.getElementById("types");
  Object.keys(data.colours).forEach(function (t) {
    var row = document.createElement("div"), dot = document.createElement("span");
    dot.style.background = data.colours[t]; row.appendChild(dot); row.appendChild(document.createTextNode(t));
    legend.appendChild(row);
  });
  var tip = document.getElementById("tip");
  function esc(s) { return String(s).replace(/[&<>"]/g, function (c) { return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]; }); }
  function showTip(ev, html) { tip.innerHTML = html; tip.style.display = "block"; tip.style.left = (ev.clientX + 12) + "px"; tip.style.top = (ev.clientY + 12) + "px"; }
  circleEls.forEach(function (c, i) {
    c.addEventListener("mousemove", function (ev) {
      var d = nodes[i], h = "<b>" + esc(d.name) + "</b> <span class='t'>" + esc(d.type) + "</span>";
      if (d.description) h += "<div>" + esc(d.description) + "</div>";
      if (d.aliases.length) h += "<div class='t'>aliases: " + esc(d.aliases.join(", ")) + "</div>";
      if (d.items.length) h += "<ul>" + d.items.map(function (it) { return "<li><span class='t'>" + esc(it.modality) + " " + esc(it.id.slice(0, 12)) + "</span> " + esc(it.text) + "</li>"; }).join("") + "</ul>";
      showTip(ev, h);
    });
    c.addEventListener("mouseleave", function () { tip.style.display = "none"; });
  });
  lineEls.forEach(function (e, k) {
    e.addEventListener("mousemove", function (ev) {
      var l = links[k];
      showTip(ev, l.facts.map(function (f) { return "<div><b>" + esc(nodes[l.source].name) + "</b> -" + esc(f.relation) + "-&gt; <b>" + esc(nodes[l.target].name) + "</b><div class='t'>" + esc(f.sentence) + "<br>sources: " + esc(f.sources.map(function (s) { return s.slice(0, 12); }).join(", ")) + "</div></div>"; }).join(""));
    });
    e.addEventListener("mouseleave", function () { tip.style.display = "none"; });
  });
  // interaction: drag a node, drag the background to pan, wheel to zoom at the cursor
  var drag = null, pan = null;
  svg.addEventListener("mousedown", function (ev) {
    var i = ev.target.getAttribute && ev.target.getAttribute("data-i");
    if (i !== null && i !== undefined) { drag = nodes[+i]; drag.fixed = true; } else { pan = {x: ev.clientX - px, y: ev.clientY - py}; }
    ev.preventDefault();
  });
  window.addEventListener("mousemove", function (ev) {
    if (drag) { drag.x = (ev.clientX - px) / z; drag.y = (ev.clientY - py) / z; for (var s = 0; s < 3; s++) tick(0.05); draw(); }
    else if (pan) { px = ev.clientX - pan.x; py = ev.clientY - pan.y; transform(); }
  });
  window.addEventListener("mouseup", function () { drag = null; pan = null; });
  svg.addEventListener("wheel", function (ev) {
    ev.preventDefault();
    var f = ev.deltaY < 0 ? 1.15 : 1 / 1.15;
    px = ev.clientX - (ev.clientX - px) * f; py = ev.clientY - (ev.clientY - py) * f; z *= f; transform();
  }, {passive: false});
  document.documentElement.setAttribute("data-ready", String(n));
})();
"""
