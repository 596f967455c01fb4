"""Retrieval: candidate generation per modality, fusion, (later) graph expansion, GRASP, packing."""

from omnimem.retrieval.fusion import Fused, reciprocal_rank_fusion
from omnimem.retrieval.hybrid import hybrid_search

__all__ = ["Fused", "reciprocal_rank_fusion", "hybrid_search"]
