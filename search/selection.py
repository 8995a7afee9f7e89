"""Top-k selection over score arrays: partial selection first, then sort only the winners."""

from __future__ import annotations

import numpy as np


def top_k_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores, plus every index tied with the k-th (unordered).

    Ties at the boundary are all kept so the caller can break them by document id and passage,
    which keeps results deterministic and equal to what a fresh index returns.
    """
    n = scores.shape[0]
    if k <= 0 or n == 0:
        return np.empty(0, dtype=np.int64)
    if k >= n:
        return np.arange(n)
    part = np.argpartition(scores, n - k)
    threshold = scores[part[n - k]]
    return np.flatnonzero(scores >= threshold)
