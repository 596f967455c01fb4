"""Memory: the facade over stores, encoders and retrieval (and, later, the hierarchy and jobs)."""

from omnimem.memory.core import IMAGE_SPACE, TEXT_SPACE, Memory

__all__ = ["Memory", "TEXT_SPACE", "IMAGE_SPACE"]
