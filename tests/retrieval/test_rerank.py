"""Reranker backends: the offline default, a tiny random cross-encoder, and the generator as judge."""

from __future__ import annotations

import numpy as np
import pytest

from omnimem.errors import ConfigError
from omnimem.retrieval.context import GraspConfig
from omnimem.retrieval.pipeline import grasp_rank
from omnimem.retrieval.rerank import (
    Candidate,
    CrossEncoderReranker,
    GeneratorReranker,
    OfflineReranker,
    Reranked,
    conservative_keep,
    lexical_overlap,
)

QUERY = "When did Maria move to Berlin?"
CANDIDATES = [
    Candidate("a", "Maria moved to Berlin in March 2021.", score=0.9),
    Candidate("b", "The weather in Lisbon was sunny.", score=0.2),
    Candidate("c", "Maria likes Berlin's museums.", score=0.6, proximity=1.0),
    Candidate("d", "Quarterly invoices are due.", score=0.0),
]


def test_lexical_overlap_and_conservative_keep():
    # content words: maria, move, berlin; the text has two of them
    assert lexical_overlap(QUERY, "Maria moved to Berlin") == pytest.approx(2 / 3)
    assert lexical_overlap("the of", "anything") == 0.0
    keep = conservative_keep(np.array([1.0, 0.1, 0.5, 0.0]), min_keep=1, ratio=0.3)
    assert keep.tolist() == [True, False, True, False]
    assert conservative_keep(np.array([0.2, 0.2]), min_keep=0, ratio=0.9).all()  # no spread: drop nothing
    with pytest.raises(ConfigError):
        Reranked(np.zeros(2), np.zeros(3, dtype=bool))


def test_offline_reranker_ranks_the_answer_first_and_drops_only_clear_losers(hash_encoder):
    verdict = OfflineReranker(hash_encoder, min_keep=1).rerank(QUERY, CANDIDATES)
    assert int(np.argmax(verdict.scores)) == 0
    assert verdict.keep[0] and verdict.keep[2] and not verdict.keep[3]
    assert OfflineReranker(None).rerank(QUERY, []).keep.shape == (0,)
    assert OfflineReranker(None, min_keep=10).rerank(QUERY, CANDIDATES).keep.all()


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory):
    """A random-initialised 1-layer BERT cross-encoder with a 40-word vocabulary, saved to disk."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    path = tmp_path_factory.mktemp("tiny-ce")
    words = "maria moved to berlin in march the weather lisbon was sunny likes museums quarterly invoices are due when did move".split()
    (path / "vocab.txt").write_text(
        "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, "'", "s", "?", "."])
    )
    tokenizer = BertTokenizer(str(path / "vocab.txt"))
    config = BertConfig(
        vocab_size=len(tokenizer.vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=64, num_labels=1,
    )  # fmt: skip
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_cross_encoder_backend_scores_every_pair_and_keeps_a_minimum(tiny_cross_encoder):
    reranker = CrossEncoderReranker.from_pretrained(str(tiny_cross_encoder), device="cpu", threshold=1e9, min_keep=2)
    verdict = reranker.rerank(QUERY, CANDIDATES)
    assert verdict.scores.shape == (4,) and np.isfinite(verdict.scores).all()
    assert verdict.keep.sum() == 2  # nothing clears the threshold: the best two stay
    again = reranker.rerank(QUERY, CANDIDATES)
    np.testing.assert_allclose(again.scores, verdict.scores, rtol=1e-5)  # deterministic in eval mode
    assert reranker.rerank(QUERY, []).scores.shape == (0,)
    with pytest.raises(ConfigError):
        CrossEncoderReranker(object(), batch_size=0)


def test_generator_judge_returns_its_mask_and_keeps_the_best_upstream(scripted):
    judge = scripted(['{"keep": [false, false, true, false]}'])
    verdict = GeneratorReranker(judge, min_keep=1).rerank(QUERY, CANDIDATES)
    assert verdict.keep.tolist() == [True, False, True, False]  # "a" is the upstream best, kept anyway
    prompt = judge.prompts[0][-1].content
    assert "Maria moved to Berlin" in prompt and "4. Quarterly invoices" in prompt


def test_generator_judge_retries_then_keeps_everything_when_it_cannot_parse(scripted):
    judge = scripted(['{"keep": [true]}', "no idea"])  # wrong length, then no JSON
    verdict = GeneratorReranker(judge, min_keep=0, retries=1).rerank(QUERY, CANDIDATES)
    assert verdict.keep.all() and len(judge.prompts) == 2


def test_a_custom_reranker_drops_items_from_the_pipeline(mem):
    ids = mem.add(["Maria moved to Berlin in March 2021.", "Maria visited Berlin museums.", "Berlin is big."])

    class DropAllButFirst:
        def rerank(self, query, candidates):
            keep = np.array([c.id == ids[0] for c in candidates])
            return Reranked(np.arange(len(candidates), 0, -1, dtype=float), keep)

    ranking = grasp_rank(
        mem, QUERY, config=GraspConfig(hop2=False, ppr=False, rerank_items=True), reranker=DropAllButFirst()
    )
    assert [f.id for f in ranking.items] == [ids[0]] and ranking.facts == []
