"""The ``--json`` hit objects: one serialisation shared by ``search query --json`` and ``search serve``.

Kept apart from ``output`` (rich) and ``serve`` (FastAPI) so each imports only what it needs, and so the
command line and the HTTP API can never drift apart: a hit is ``rank`` followed by ``Hit.to_dict()``.
"""

from __future__ import annotations

from typing import Any

from search import Hit

#: The fields computed by re-analyzing the passage; ``snippets=False`` leaves them out (the HTTP API).
SNIPPET_FIELDS = ("snippet", "snippet_highlights", "highlights")
#: The rest of ``Hit.to_dict()``, read as attributes, in its order (a test keeps the two equal).
PLAIN_FIELDS = ("doc_id", "passage", "score", "lang", "title", "text", "meta")


def hit_objects(hits: list[Hit], offset: int, *, snippets: bool = True) -> list[dict[str, Any]]:
    """The hits as JSON-ready dicts, ranked from ``offset + 1``; without ``snippets`` no passage is
    re-analyzed and the snippet fields are absent."""
    if snippets:
        return [dict(rank=offset + i + 1, **hit.to_dict()) for i, hit in enumerate(hits)]
    return [
        dict(rank=offset + i + 1, **{name: getattr(hit, name) for name in PLAIN_FIELDS}) for i, hit in enumerate(hits)
    ]
