"""The agentic M3KG builder: the paper's agents as a LangGraph ``StateGraph``, and its batch job.

M3KG-RAG (arXiv 2512.20136), "M3KG construction", one graph run per batch of items::

    parse -> rewrite -> extract -> inspect_triplets --(low score, retries left)--> extract
                                        |
                                    normalize --(no concept to describe)--> write
                                        |
    search -> select -> refine -> inspect_descriptions --(low score, retries left)--> refine
                                        |
                                      write

- *parse*: the fast spaCy extractor's rows (mentions and types; the fallback triplets);
- step 1 *rewriter* (knowledge-dense rewrite with the item's speaker, title, neighbours) and
  *extractor* (triplets with their sentence); the *inspector* scores them 0-10 and sends low ones
  back to the extractor (bounded); an item whose answer is malformed, empty or still low falls back
  to the fast extractor's triplets, logged with its id;
- step 2 *normalizer* (:func:`omnimem.graph.normalize.canonical_text`) and *searcher* (the local
  knowledge base, then the graph's own descriptions; the LLM fills what no source has);
- step 3 *selector* (the candidate that fits the context) and *refiner* (adapted to the mention),
  step 4 *inspector* again, then *write*: :meth:`GraphStore.write` with sources = the item ids (the
  coverage property) and :meth:`GraphStore.set_descriptions`.

LLM calls are batched: ``items_per_call`` items per rewriter / extractor / inspector call,
``concepts_per_call`` concepts per grounding call. State is checkpointed per node in a LangGraph
SQLite checkpointer (thread = the batch), so a crashed run resumes at the node it was in.
"""

from __future__ import annotations

import dataclasses
import logging
import operator
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypedDict

from omnimem.agents import kg_prompts as P
from omnimem.agents._recall import compile_graph, state_graph, stream_updates
from omnimem.agents.kg_support import KGAgentConfig, KnowledgeBase, LLMCalls, item_contexts
from omnimem.graph.builder import rows_from_extraction
from omnimem.graph.jobs import BatchOutcome, Failure, GraphJobReport, Progress, run_with_resolution, write_rows
from omnimem.graph.jobs import build_graph as build_graph_fast
from omnimem.graph.normalize import canonical_text, concept_key
from omnimem.graph.store import EntityRow, MentionRow, TripletRow
from omnimem.types import content_id

__all__ = ["AGENTIC", "KGAgentConfig", "KnowledgeBase", "build_kg_agent", "run_batch", "build_graph"]

log = logging.getLogger(__name__)

AGENTIC = "agentic"  # the mode name of this job in graph_progress
_EDGE = " .,;:!?\"'()"  # stripped from the ends of a triplet's head, relation and tail


def _add_counts(a: dict[str, int] | None, b: dict[str, int] | None) -> dict[str, int]:
    out = dict(a or {})
    for k, v in (b or {}).items():
        out[k] = out.get(k, 0) + v
    return out


class KGState(TypedDict, total=False):
    """One batch's state (plain JSON-like values, so the checkpointer can store it)."""

    item_ids: list[str]  # the batch (input)
    items: list[dict]  # {id, text, event_time, context} of the items with text
    fast: dict[str, dict]  # item id -> the fast extractor's rows {entities, mentions, triplets, types}
    texts: dict[str, str]  # item id -> the rewritten text
    triplets: dict[str, list[dict]]  # item id -> the LLM's triplets {head, relation, tail, sentence}
    inspect: list[str]  # items whose triplets the inspector scores next
    redo: list[str]  # items the extractor re-runs
    extract_rounds: int  # extractor runs so far
    fallback: list[str]  # items written with the fast extractor's triplets
    rows: dict[str, dict]  # item id -> the LLM rows after normalisation {entities, mentions, triplets}
    concepts: list[
        dict
    ]  # concepts to describe {entity, name, type, surface, context, candidates, selected, source, description}
    redo_concepts: list[int]  # concepts the refiner re-runs
    refine_rounds: int  # refiner runs so far
    calls: Annotated[dict[str, int], _add_counts]  # LLM calls per step
    failures: Annotated[list[dict], operator.add]  # {item, step, message}
    outcome: dict  # what write did {counts, entity_ids, done, skipped}


def _chunks(seq: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [seq[k : k + size] for k in range(0, len(seq), size)]


def _rows(d: dict) -> tuple[list[EntityRow], list[MentionRow], list[TripletRow]]:
    entities = [EntityRow(**{**e, "aliases": tuple(e["aliases"])}) for e in d["entities"]]
    mentions = [MentionRow(**m) for m in d["mentions"]]
    triplets = [TripletRow(**{**t, "sources": tuple(t["sources"])}) for t in d["triplets"]]
    return entities, mentions, triplets


def _as_dicts(entities: Sequence[Any], mentions: Sequence[Any], triplets: Sequence[Any]) -> dict[str, list[dict]]:
    return {k: [dataclasses.asdict(r) for r in rows] for k, rows in (("entities", entities), ("mentions", mentions), ("triplets", triplets))}  # fmt: skip


def _numbered(rows: Any, key: str, size: int) -> dict[int, dict]:
    """Answer rows by their 0-based unit index (``[n]`` in the prompt), dropping out-of-range ones."""
    out: dict[int, list] = {}
    for row in rows or ():
        k = row.get(key)
        if isinstance(k, int) and 1 <= k <= size:
            out.setdefault(k - 1, []).append(row)
    return out


def _items_of(concepts: Sequence[dict]) -> list[str]:
    return list(dict.fromkeys(c["item"] for c in concepts))


def _clean(text: Any, limit: int, edge: str = " ") -> str:
    text = " ".join(str(text or "").split()).strip(edge)
    return text if 0 < len(text) <= limit else ""


class _Agents:
    """The node functions of the graph, sharing the memory, the LLM, the knowledge base and the config."""

    def __init__(self, memory: Any, llm: LLMCalls, kb: KnowledgeBase, config: KGAgentConfig) -> None:
        self.memory, self.graph, self.llm, self.kb, self.cfg = memory, memory.graph, llm, kb, config
        self._spacy = threading.Lock()  # one spaCy pipeline, shared by the job's worker threads

    def _ask(self, step: str, user: str, *, units: int, ids: Sequence[str], calls: Counter, failures: list) -> Any:
        schema = P.schema_for(step, units, per_unit=self.cfg.max_triplets if step == "extract" else 1)
        return self.llm.json(step, P.messages(step, user), schema, units=units, ids=ids, calls=calls, failures=failures)

    # -- parse: the fast extractor's rows, the items' contexts -----------------------------------
    def parse(self, state: KGState) -> dict:
        items = [i for i in self.memory.store.get(state["item_ids"]) if i is not None and i.text.strip()]
        contexts = item_contexts(self.memory.store, items, self.cfg.context_window)
        with self._spacy:
            extractor = self.memory.builder.extractor
            extractions = extractor.extract([i.text for i in items], speakers=[i.speaker for i in items])
        fast = {}
        for item, extraction in zip(items, extractions):
            types: dict[str, str] = {}
            for m in extraction.mentions:
                if types.get(concept_key(m.concept), "CONCEPT") == "CONCEPT":
                    types[concept_key(m.concept)] = m.type
            fast[item.id] = {**_as_dicts(*rows_from_extraction(item, extraction)), "types": types}
        units = [{"id": i.id, "text": i.text, "event_time": i.event_time, "context": contexts[i.id]} for i in items]
        return {
            "items": units, "fast": fast, "texts": {i.id: i.text for i in items}, "triplets": {}, "fallback": [],
            "inspect": [], "redo": [], "extract_rounds": 0, "rows": {}, "concepts": [], "redo_concepts": [],
            "refine_rounds": 0,
        }  # fmt: skip

    # -- step 1: rewriter, extractor, inspector --------------------------------------------------
    def rewrite(self, state: KGState) -> dict:
        if not self.cfg.rewrite:
            return {}
        calls: Counter = Counter()
        failures: list[dict] = []
        texts = dict(state["texts"])
        for chunk in _chunks(state["items"], self.cfg.items_per_call):
            user = P.rewrite_prompt(chunk, self.cfg.max_text_chars)
            answer = self._ask("rewrite", user, units=len(chunk), ids=[u["id"] for u in chunk], calls=calls, failures=failures)  # fmt: skip
            for k, rows in _numbered((answer or {}).get("texts"), "item", len(chunk)).items():
                text = _clean(rows[0]["text"], 3 * len(chunk[k]["text"]) + 200)
                if text:
                    texts[chunk[k]["id"]] = text
        return {"texts": texts, "calls": dict(calls), "failures": failures}

    def extract(self, state: KGState) -> dict:
        calls: Counter = Counter()
        failures: list[dict] = []
        todo = state["redo"] or [u["id"] for u in state["items"]]
        triplets, fallback, inspect = dict(state["triplets"]), set(state["fallback"]), []
        for chunk in _chunks(todo, self.cfg.items_per_call):
            user = P.extract_prompt([state["texts"][i] for i in chunk], self.cfg.max_text_chars)
            if state["redo"]:
                user += "\n\nA previous answer missed or misstated facts: list every fact, exactly as the text says."
            answer = self._ask("extract", user, units=len(chunk), ids=chunk, calls=calls, failures=failures)
            found = _numbered((answer or {}).get("triplets"), "item", len(chunk))
            for k, item_id in enumerate(chunk):
                rows = [
                    {"head": h, "relation": r, "tail": t, "sentence": _clean(row.get("sentence"), 600)}
                    for row in found.get(k, [])
                    if (h := _clean(row["head"], 100, _EDGE)) and (r := _clean(row["relation"], 60, _EDGE)) and (t := _clean(row["tail"], 100, _EDGE))
                ]  # fmt: skip
                if rows:
                    triplets[item_id] = rows
                    fallback.discard(item_id)
                    inspect.append(item_id)
                else:
                    triplets.pop(item_id, None)
                    fallback.add(item_id)
                    if answer is not None:
                        log.info("M3KG extract: no usable triplet for item %s; using the fast extractor's", item_id)
        return {
            "triplets": triplets, "fallback": sorted(fallback), "inspect": inspect, "redo": [],
            "extract_rounds": state["extract_rounds"] + 1, "calls": dict(calls), "failures": failures,
        }  # fmt: skip

    def inspect_triplets(self, state: KGState) -> dict:
        calls: Counter = Counter()
        failures: list[dict] = []
        low: list[str] = []
        for chunk in _chunks(state["inspect"], self.cfg.items_per_call):
            units = [(state["texts"][i], state["triplets"][i]) for i in chunk]
            user = P.inspect_triplets_prompt(units, self.cfg.max_text_chars)
            answer = self._ask("inspect_triplets", user, units=len(chunk), ids=chunk, calls=calls, failures=failures)
            for k, rows in _numbered((answer or {}).get("scores"), "item", len(chunk)).items():
                if float(rows[0]["score"]) < self.cfg.min_score:  # an unscored item passes: no evidence against it
                    low.append(chunk[k])
        update: dict[str, Any] = {"inspect": [], "calls": dict(calls), "failures": failures}
        if low and state["extract_rounds"] <= self.cfg.max_retries:
            log.debug("M3KG inspector: re-extracting %s", low)
            return {**update, "redo": low}
        if low:
            log.info("M3KG inspector: items %s still score low; using the fast extractor's triplets", low)
            triplets = {k: v for k, v in state["triplets"].items() if k not in low}
            return {**update, "triplets": triplets, "fallback": sorted({*state["fallback"], *low})}
        return update

    # -- step 2: normalizer, searcher ------------------------------------------------------------
    def _type(self, name: str, types: dict[str, str]) -> str:
        key = concept_key(name)
        if key in types:
            return types[key]
        known = self.graph.find_entities(name)
        return known[0].type if known else "CONCEPT"

    def normalize(self, state: KGState) -> dict:
        rows: dict[str, dict] = {}
        concepts: dict[str, dict] = {}
        fallback = set(state["fallback"])

        def concept(entity: EntityRow, surface: str, context: str, item_id: str) -> None:
            if self.cfg.describes(entity.type) and entity.id not in concepts:
                concepts[entity.id] = {"entity": entity.id, "item": item_id, "name": entity.name, "type": entity.type, "surface": surface, "context": context}  # fmt: skip

        for unit in state["items"]:
            item_id, text = unit["id"], unit["text"]
            fast = state["fast"][item_id]
            if item_id in fallback or item_id not in state["triplets"]:
                names = {e["id"]: e for e in fast["entities"]}
                for t in fast["triplets"]:
                    for end in (t["head"], t["tail"]):
                        e = names[end]
                        concept(EntityRow(e["id"], e["name"], e["type"]), e["aliases"][0] if e["aliases"] else e["name"], t["sentence"], item_id)  # fmt: skip
                continue
            entities: dict[str, EntityRow] = {}
            mentions, triplets = [], []
            for t in state["triplets"][item_id]:
                ends = []
                for surface in (t["head"], t["tail"]):
                    name = canonical_text(surface)
                    entity = EntityRow.make(name, self._type(name, fast["types"]), [surface]) if name else None
                    ends.append(entity)
                head, tail = ends
                relation = t["relation"].lower()
                if head is None or tail is None or head.id == tail.id:
                    continue
                sentence = t["sentence"] or state["texts"][item_id][:600]
                grounded = all(concept_key(e.name) in text.casefold() for e in ends)
                confidence = self.cfg.llm_confidence * (1.0 if grounded else 0.6)
                triplets.append(TripletRow.make(head.id, relation, tail.id, sentence, confidence, [item_id], valid_from=unit["event_time"]))  # fmt: skip
                for entity, surface in ((head, t["head"]), (tail, t["tail"])):
                    entities.setdefault(entity.id, entity)
                    start = text.casefold().find(surface.casefold())
                    if start >= 0:
                        mentions.append(MentionRow(entity.id, item_id, text[start : start + len(surface)], start, start + len(surface), sentence))  # fmt: skip
                    concept(entity, surface, sentence, item_id)
            if triplets:
                rows[item_id] = _as_dicts(list(entities.values()), mentions, triplets)
            else:
                log.info("M3KG normalize: no valid triplet left for item %s; using the fast extractor's", item_id)
                fallback.add(item_id)
        described = {e.id for e in self.graph.entities(list(concepts)) if e.description}
        todo = [c for eid, c in concepts.items() if eid not in described][: self.cfg.max_concepts]
        return {"rows": rows, "fallback": sorted(fallback), "concepts": todo}

    def search(self, state: KGState) -> dict:
        calls: Counter = Counter()
        failures: list[dict] = []
        concepts = [dict(c) for c in state["concepts"]]
        for c in concepts:
            candidates = [{"source": "kb", "text": text} for text in self.kb.lookup(c["name"])]
            for e in self.graph.find_entities(c["name"]):
                if e.description and e.id != c["entity"] and all(e.description != x["text"] for x in candidates):
                    candidates.append({"source": "graph", "text": e.description})
            c["candidates"] = candidates
        missing = [c for c in concepts if not c["candidates"]]
        for chunk in _chunks(missing, self.cfg.concepts_per_call):
            answer = self._ask("fill", P.fill_prompt(chunk), units=len(chunk), ids=_items_of(chunk), calls=calls, failures=failures)  # fmt: skip
            for k, rows in _numbered((answer or {}).get("descriptions"), "concept", len(chunk)).items():
                text = _clean(rows[0]["description"], 400)
                if text:
                    chunk[k]["candidates"] = [{"source": "llm", "text": text}]
        return {"concepts": concepts, "calls": dict(calls), "failures": failures}

    # -- step 3: selector, refiner; step 4: inspector ----------------------------------------------
    def select(self, state: KGState) -> dict:
        calls: Counter = Counter()
        failures: list[dict] = []
        concepts = [dict(c) for c in state["concepts"] if c["candidates"]]
        for c in concepts:
            c["selected"], c["source"] = c["candidates"][0]["text"], c["candidates"][0]["source"]
        ambiguous = [c for c in concepts if len(c["candidates"]) > 1]
        for chunk in _chunks(ambiguous, self.cfg.concepts_per_call):
            answer = self._ask("select", P.select_prompt(chunk), units=len(chunk), ids=_items_of(chunk), calls=calls, failures=failures)  # fmt: skip
            for k, rows in _numbered((answer or {}).get("choices"), "concept", len(chunk)).items():
                choice = rows[0]["choice"]
                if 1 <= choice <= len(chunk[k]["candidates"]):
                    picked = chunk[k]["candidates"][choice - 1]
                    chunk[k]["selected"], chunk[k]["source"] = picked["text"], picked["source"]
        for c in concepts:
            c["description"] = c["selected"]
        return {"concepts": concepts, "calls": dict(calls), "failures": failures}

    def refine(self, state: KGState) -> dict:
        calls: Counter = Counter()
        failures: list[dict] = []
        concepts = [dict(c) for c in state["concepts"]]
        todo = state["redo_concepts"] or list(range(len(concepts)))
        for chunk in _chunks(todo, self.cfg.concepts_per_call):
            units = [concepts[k] for k in chunk]
            answer = self._ask("refine", P.refine_prompt(units), units=len(units), ids=_items_of(units), calls=calls, failures=failures)  # fmt: skip
            for k, rows in _numbered((answer or {}).get("descriptions"), "concept", len(units)).items():
                text = _clean(rows[0]["description"], 400)
                if text:
                    units[k]["description"] = text
        return {"concepts": concepts, "redo_concepts": [], "refine_rounds": state["refine_rounds"] + 1, "inspect": todo, "calls": dict(calls), "failures": failures}  # fmt: skip

    def inspect_descriptions(self, state: KGState) -> dict:
        calls: Counter = Counter()
        failures: list[dict] = []
        concepts = [dict(c) for c in state["concepts"]]
        low: list[int] = []
        for chunk in _chunks(state["inspect"], self.cfg.concepts_per_call):
            units = [concepts[k] for k in chunk]
            answer = self._ask("inspect_descriptions", P.inspect_descriptions_prompt(units), units=len(units), ids=_items_of(units), calls=calls, failures=failures)  # fmt: skip
            for k, rows in _numbered((answer or {}).get("scores"), "concept", len(units)).items():
                if float(rows[0]["score"]) < self.cfg.min_score:
                    low.append(chunk[k])
        update: dict[str, Any] = {"inspect": [], "calls": dict(calls), "failures": failures}
        if low and state["refine_rounds"] <= self.cfg.max_retries:
            return {**update, "redo_concepts": low}
        for k in low:  # keep a sourced description unrefined; drop an LLM-made one
            concepts[k]["description"] = concepts[k]["selected"] if concepts[k]["source"] != "llm" else None
        return {**update, "concepts": concepts, "redo_concepts": []}

    # -- write ---------------------------------------------------------------------------------
    def write(self, state: KGState) -> dict:
        rows: dict[str, tuple[list[EntityRow], list[MentionRow], list[TripletRow]]] = {}
        for unit in state["items"]:
            entities, mentions, triplets = _rows(state["fast"][unit["id"]])
            llm = state["rows"].get(unit["id"])
            if llm is not None:  # else the fallback: the fast extractor's triplets
                e, m, triplets = _rows(llm)
                entities, mentions = entities + e, mentions + m
            if entities or triplets:
                rows[unit["id"]] = (entities, mentions, triplets)
        written = write_rows(self.graph, rows)  # mentions of split names go to their closest sense
        counts = dict(written.counts)
        descriptions = {c["entity"]: c["description"] for c in state.get("concepts", []) if c.get("description")}
        counts["descriptions"] = self.graph.set_descriptions(descriptions) if descriptions else 0
        skipped = len(state["item_ids"]) - len(state["items"])
        return {"outcome": {"counts": counts, "entity_ids": list(dict.fromkeys(written.entity_ids)), "done": list(state["item_ids"]), "skipped": skipped}}  # fmt: skip


def build_kg_agent(
    memory: Any, generator: Any, *, kb: Any = None, config: KGAgentConfig | None = None, checkpointer: Any = None
) -> Any:
    """The compiled LangGraph ``StateGraph`` of the M3KG agents for one batch of items.

    ``memory``: an ``omnimem.Memory`` (read: items, graph; written: graph rows). ``generator``: an
    ``omnimem.vlm`` Generator. ``kb``: a :class:`KnowledgeBase`, a ``{name: description(s)}`` dict
    or a JSONL path. ``checkpointer``: a LangGraph checkpointer; default a SQLite one at
    ``config.checkpoint`` (or ``<memory>/kg_agent.ckpt.sqlite``). Invoke / stream it with
    ``{"item_ids": [...]}`` and a ``thread_id`` (see :func:`run_batch`).
    """
    StateGraph, START, END = state_graph()
    cfg = config or KGAgentConfig()
    agents = _Agents(memory, LLMCalls(generator, cfg), KnowledgeBase.coerce(kb), cfg)
    graph = StateGraph(KGState)
    for name in ("parse", "rewrite", "extract", "inspect_triplets", "normalize", "search", "select", "refine", "inspect_descriptions", "write"):  # fmt: skip
        graph.add_node(name, getattr(agents, name))
    graph.add_edge(START, "parse")
    graph.add_edge("parse", "rewrite")
    graph.add_edge("rewrite", "extract")
    graph.add_conditional_edges("extract", lambda s: "inspect_triplets" if s["inspect"] else "normalize", ["inspect_triplets", "normalize"])  # fmt: skip
    graph.add_conditional_edges("inspect_triplets", lambda s: "extract" if s["redo"] else "normalize", ["extract", "normalize"])  # fmt: skip
    graph.add_conditional_edges("normalize", lambda s: "search" if s["concepts"] else "write", ["search", "write"])
    graph.add_edge("search", "select")
    graph.add_conditional_edges("select", lambda s: "refine" if s["concepts"] else "write", ["refine", "write"])
    graph.add_edge("refine", "inspect_descriptions")
    graph.add_conditional_edges("inspect_descriptions", lambda s: "refine" if s["redo_concepts"] else "write", ["refine", "write"])  # fmt: skip
    graph.add_edge("write", END)
    return compile_graph(graph, memory, checkpointer, cfg.checkpoint, "kg_agent.ckpt.sqlite")


def batch_thread(item_ids: Sequence[str]) -> str:
    """The checkpoint thread of a batch: the same items resume the same thread."""
    return "m3kg-" + content_id({"items": list(item_ids)})


def run_batch(app: Any, item_ids: Sequence[str], *, on_step: Callable[[str, dict], None] | None = None) -> dict:
    """Run (or resume from its checkpoint) the graph on one batch, streaming each node's update to ``on_step``."""
    config = {"configurable": {"thread_id": batch_thread(item_ids)}, "recursion_limit": 64}
    snapshot = app.get_state(config)
    if snapshot.next:
        log.info("M3KG: resuming batch %s at %s", config["configurable"]["thread_id"], ", ".join(snapshot.next))
        inputs = None
    elif snapshot.values.get("outcome"):
        return snapshot.values
    else:
        inputs = {"item_ids": list(item_ids)}
    return stream_updates(app, inputs, config, on_step, "M3KG")


def _outcome(values: dict) -> BatchOutcome:
    out = values["outcome"]
    failures = [Failure(f["item"], f["step"], f["message"]) for f in values.get("failures", [])]
    counts = Counter({k: v for k, v in out["counts"].items()})
    return BatchOutcome(out["done"], out["skipped"], counts, out["entity_ids"], failures, Counter(values.get("calls", {})))  # fmt: skip


def build_graph(
    memory: Any, *, agentic: bool = False, generator: Any = None, workers: int = 1, batch_size: int | None = None,
    progress: Progress = None, resolve: bool = True, kb: Any = None, config: KGAgentConfig | None = None,
    limit: int | None = None, on_step: Callable[[str, dict], None] | None = None,
) -> GraphJobReport:  # fmt: skip
    """Build the M3KG over every item this mode has not processed (``omnimem graph build``).

    ``agentic=False``: the fast spaCy job (:func:`omnimem.graph.jobs.build_graph`; batches of 64).
    ``agentic=True``: the LangGraph agents over batches of ``batch_size`` (default 8) items, with
    ``generator`` (default: the packaged SmolLM2 on llama.cpp), ``kb`` and ``config``;
    ``workers > 1`` runs that many batches in threads (calls to one local model stay serialized).
    Resumable and idempotent in both modes; see :class:`~omnimem.graph.jobs.GraphJobReport`.
    """
    if not agentic:
        return build_graph_fast(memory, workers=workers, batch_size=batch_size or 64, progress=progress, resolve=resolve, limit=limit)  # fmt: skip
    if generator is None:
        from omnimem.vlm import create_generator

        generator = create_generator("smollm2")
    app = build_kg_agent(memory, generator, kb=kb, config=config)
    finished: list[str] = []

    def prepare(items: list) -> dict:
        return run_batch(app, [i.id for i in items], on_step=on_step)

    def commit(items: list, values: dict) -> BatchOutcome:
        finished.append(batch_thread(values["item_ids"]))
        return _outcome(values)

    try:
        report = run_with_resolution(
            memory, mode=AGENTIC, resolve=resolve, prepare=prepare, commit=commit, batch_size=batch_size or 8,
            workers=workers, pool="thread", progress=progress, limit=limit,
        )  # fmt: skip
        for thread in finished:
            app.checkpointer.delete_thread(thread)
        return report
    finally:
        conn = getattr(app.checkpointer, "conn", None)
        if conn is not None:
            conn.close()
