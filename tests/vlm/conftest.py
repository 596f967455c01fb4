"""Tiny random-initialised checkpoints shared by the transformers-backend tests (built once)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may reach a model hub


@pytest.fixture(scope="session")
def qwen2vl(tmp_path_factory):
    from vlm_tiny_models import build_tiny_qwen2vl

    from omnimem.vlm.hf import HFGenerator

    return HFGenerator.from_pretrained(str(build_tiny_qwen2vl(tmp_path_factory.mktemp("qwen2vl"))), device="cpu")


@pytest.fixture(scope="session")
def llava(tmp_path_factory):
    from vlm_tiny_models import build_tiny_llava

    from omnimem.vlm import create_generator

    return create_generator("hf", str(build_tiny_llava(tmp_path_factory.mktemp("llava"))), dtype="float32")


@pytest.fixture(scope="session")
def llama(tmp_path_factory):
    from vlm_tiny_models import build_tiny_llama

    from omnimem.vlm.hf import HFGenerator

    return HFGenerator.from_pretrained(str(build_tiny_llama(tmp_path_factory.mktemp("llama"))))
