"""Process pools for file-bound work (synthesis, pretransform)."""

from __future__ import annotations


def process_pool(workers: int, initializer=None):
    """A pool of ``workers`` processes for file-bound work.

    ``fork`` where the platform has it: workers start at once and scripts without an
    ``if __name__ == "__main__"`` guard still work; ``spawn`` elsewhere.
    """
    import multiprocessing

    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    return multiprocessing.get_context(method).Pool(workers, initializer=initializer)
