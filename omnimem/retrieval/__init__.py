"""Retrieval: candidates per modality, fusion, multi-hop expansion, GRASP, and token-budgeted packing.

``retrieve_context(memory, query, budget_tokens=...) -> Context`` is the GRASP pipeline
(M3KG-RAG, arXiv 2512.20136, with HippoRAG 2's PageRank); ``grasp_search`` gives its ranking as hits;
``hybrid_search`` is the plain fused search behind ``Memory.search``.
"""

from omnimem.retrieval.context import STAGES, Context, ContextEntry, GraspConfig, RetrievalSource, estimate_tokens
from omnimem.retrieval.fusion import Fused, reciprocal_rank_fusion
from omnimem.retrieval.hybrid import hybrid_search
from omnimem.retrieval.pipeline import GraspRanking, grasp_rank, grasp_search, pack_context, retrieve_context
from omnimem.retrieval.rerank import (
    Candidate,
    CrossEncoderReranker,
    GeneratorReranker,
    OfflineReranker,
    Reranked,
    Reranker,
)

__all__ = [
    "Fused", "reciprocal_rank_fusion", "hybrid_search",
    "Context", "ContextEntry", "GraspConfig", "RetrievalSource", "STAGES", "estimate_tokens",
    "GraspRanking", "grasp_rank", "grasp_search", "pack_context", "retrieve_context",
    "Candidate", "Reranked", "Reranker", "OfflineReranker", "CrossEncoderReranker", "GeneratorReranker",
]  # fmt: skip
