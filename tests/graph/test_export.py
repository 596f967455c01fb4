"""Exports: GraphML round-trips through networkx, JSON carries every triplet with sources, HTML renders headless."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import networkx as nx
import pytest

from omnimem.errors import ConfigError, NotFound
from omnimem.graph.export import export_graph, select_subgraph, to_html
from omnimem.graph.jobs import build_graph
from omnimem.types import Item

TEXTS = [
    "Barack Obama was born in Hawaii.",
    "Obama moved to Chicago and worked as a lawyer.",
    "Chicago is a city in Illinois.",
    "Alice adopted a cat in Berlin. </script><script>document.title='pwned'</script>",
]


@pytest.fixture
def built(mem):
    mem.add_items([Item.make(text=t, speaker="Carol") for t in TEXTS])
    build_graph(mem, resolve=False)
    return mem


def test_graphml_round_trips_through_networkx(built, tmp_path):
    path = export_graph(built.graph, format="graphml", output=tmp_path / "g.graphml")
    g = nx.read_graphml(path, force_multigraph=True)
    triplets = built.graph.triplets()
    entities = built.graph.entities()
    assert {n for n, d in g.nodes(data=True) if d["kind"] == "entity"} == {e.id for e in entities}
    edges = {k: d for _, _, k, d in g.edges(keys=True, data=True) if d["kind"] == "triplet"}
    assert set(edges) == {t.id for t in triplets}
    for t in triplets:
        assert json.loads(edges[t.id]["sources"]) == list(t.sources) and edges[t.id]["relation"] == t.relation
    items = {n for n, d in g.nodes(data=True) if d["kind"] == "item"}
    assert items == {s for t in triplets for s in t.sources} | {m.item_id for m in built.graph.mentions()}


def test_json_has_every_triplet_with_sources(built, tmp_path):
    data = json.loads(export_graph(built.graph, format="json", output=tmp_path / "g.json").read_text())
    triplets = {t.id: t for t in built.graph.triplets()}
    assert {t["id"] for t in data["triplets"]} == set(triplets)
    assert all(t["sources"] == list(triplets[t["id"]].sources) and t["sources"] for t in data["triplets"])
    item_ids = {i["id"] for i in data["items"]}
    assert all(set(t["sources"]) <= item_ids for t in data["triplets"])
    names = {e["name"] for e in data["entities"]}
    assert {"Barack Obama", "Chicago", "Illinois"} <= names


def test_subgraph_is_the_hop_neighbourhood(built):
    one = select_subgraph(built.graph, ["Illinois"], hops=1)
    two = select_subgraph(built.graph, ["Illinois"], hops=2)
    assert {e.name for e in one.entities} == {"Illinois", "Chicago"}
    assert {"Illinois", "Chicago", "Obama"} <= {e.name for e in two.entities}
    assert "Berlin" not in {e.name for e in two.entities}
    assert all(t.head in {e.id for e in two.entities} and t.tail in {e.id for e in two.entities} for t in two.triplets)
    with pytest.raises(NotFound, match="no entity named"):
        select_subgraph(built.graph, ["Atlantis"])
    with pytest.raises(ConfigError, match="format"):
        export_graph(built.graph, format="csv", output="x.csv")


def test_html_is_self_contained_and_escapes_text(built):
    page = to_html(select_subgraph(built.graph))
    assert len(re.findall(r"<script\b", page)) == 2  # the data block and the layout: nothing injected
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page
    assert "\\u003c/script>" in page


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _headless(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    """Run headless Chromium offline and without a sandbox (root in a container): no GPU, no QUIC, no
    first-run, sync, component-update or background fetches, and a fresh profile in ``profile``."""
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
    ]  # fmt: skip
    return subprocess.run([browser, *flags, *args], capture_output=True, text=True, timeout=90)


@pytest.mark.data
@pytest.mark.slow
def test_html_of_a_musique_2hop_subgraph_renders_headless(data_dir, mem, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium is not installed (bash scripts/system-deps.sh, or apt-get install chromium)")
    questions = json.loads((data_dir / "musique" / "musique_qa_train100.json").read_text(encoding="utf-8"))
    question = questions[0]
    mem.add_items([Item.make(text=p["paragraph_text"], metadata={"title": p["title"]}) for p in question["paragraphs"]])
    build_graph(mem, resolve=False)
    seeds = [
        m.concept for m in mem.builder.extractor.extract_one(question["question"]).mentions
        if m.type != "CONCEPT" and mem.graph.find_entities(m.concept)
    ]  # fmt: skip
    assert seeds, question["question"]
    sub = select_subgraph(mem.graph, seeds, hops=2)
    path = export_graph(mem.graph, format="html", output=tmp_path / "q.html", entity=seeds, hops=2)

    run = _headless(browser, tmp_path / "profile-dom", "--dump-dom", path.as_uri())
    assert run.returncode == 0, run.stderr[-2000:]
    dom = run.stdout
    html_tag = re.search(r"<html[^>]*>", dom).group(0)
    assert "data-error" not in html_tag and "Uncaught" not in run.stderr, (html_tag, run.stderr[-2000:])
    assert re.search(r'data-ready="(\d+)"', html_tag).group(1) == str(len(sub.entities))
    assert len(re.findall(r"<circle\b", dom)) == len(sub.entities) > 1
    links = {tuple(sorted((t.head, t.tail))) for t in sub.triplets if t.head != t.tail}
    assert len(re.findall(r"<line\b", dom)) == len({(t.head, t.tail) for t in sub.triplets if t.head != t.tail}) >= len(links)  # fmt: skip
    positions = re.findall(r'<circle [^>]*cx="([-\d.e]+)" cy="([-\d.e]+)"', dom)
    assert len(set(positions)) == len(sub.entities)  # laid out: no two nodes on one spot, no NaN

    shot = Path(os.environ.get("OMNIMEM_SCREENSHOT_DIR", tmp_path)) / "musique_2hop.png"
    run = _headless(browser, tmp_path / "profile-shot", "--window-size=1200,800", f"--screenshot={shot}", path.as_uri())
    assert run.returncode == 0 and shot.stat().st_size > 5_000
