"""Knowledge graph: extract entities and relations from a few passages and export an HTML view.

    .venv/bin/python examples/05_knowledge_graph.py [OUTPUT_DIR]

Passages: the first MuSiQue question's paragraphs from the shared data folder when present, else a
few bundled sentences. Offline: spaCy en_core_web_sm extracts the triplets (the fast M3KG job);
the HTML file opens in any browser.
"""

import json
import sys
import tempfile
from pathlib import Path

import omnimem
from omnimem.data import data_dir
from omnimem.graph.export import export_graph

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())

musique = data_dir() and data_dir() / "musique" / "musique_qa_train100.json"
if musique and musique.is_file():
    question = json.loads(musique.read_text())[0]
    passages = [(p["title"], p["paragraph_text"]) for p in question["paragraphs"] if p["is_supporting"]]
else:
    passages = [
        ("Marie Curie", "Marie Curie was born in Warsaw. She worked at the University of Paris."),
        ("Pierre Curie", "Pierre Curie married Marie Curie in 1895. He was born in Paris."),
        ("Warsaw", "Warsaw is the capital of Poland."),
    ]

with omnimem.Memory.open(out / "memory") as mem:
    for title, text in passages:
        mem.add(text, source=title, metadata={"title": title})
    report = mem.consolidate()
    counts = mem.graph.counts()
    print(f"{len(passages)} passages -> {counts.get('entities', 0)} entities, {counts.get('triplets', 0)} triplets")
    for triplet in mem.graph.triplets()[:5]:
        head, tail = (mem.graph.entities([e])[0].name for e in (triplet.head, triplet.tail))
        print(f"  {head} -{triplet.relation}-> {tail}")
    html = export_graph(mem.graph, format="html", output=out / "graph.html")
    print(f"wrote {html} ({html.stat().st_size} bytes)")
