"""A query runs with BLAS on one thread and gives the caller's setting back afterwards."""

from __future__ import annotations

import threading

import pytest

threadpoolctl = pytest.importorskip("threadpoolctl")

from omnimem.retrieval.threads import one_blas_thread  # noqa: E402


def _blas_threads() -> set[int]:
    return {lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"}


def test_limits_blas_to_one_thread_and_restores_it_after_nested_and_concurrent_use():
    import numpy  # noqa: F401  (loads the BLAS library)

    before = _blas_threads()
    if not before:
        pytest.skip("no BLAS library loaded")
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        with one_blas_thread():
            assert _blas_threads() == {1}
            with one_blas_thread():
                assert _blas_threads() == {1}
            assert _blas_threads() == {1}  # the outer query still runs
            started, release, finished = threading.Event(), threading.Event(), threading.Event()

            def other_query():  # a concurrent query that ends while this one still runs
                with one_blas_thread():
                    started.set()
                    release.wait(5)
                finished.set()

            t = threading.Thread(target=other_query)
            t.start()
            started.wait(5)
            release.set()
            finished.wait(5)
            t.join(5)
            assert _blas_threads() == {1}  # this query still runs
        assert _blas_threads() == {2}  # the last one out restored the caller's limit
    assert _blas_threads() == before
