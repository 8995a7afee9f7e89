"""Errors of the search engine: one root, ``SearchError``, with precise subclasses callers can catch."""

from __future__ import annotations


class SearchError(Exception):
    """Root of every error telusur raises on purpose."""


class IndexNotFound(SearchError):
    """The path does not exist or is not a telusur index (no ``meta.json``)."""


class IndexCorrupt(SearchError):
    """A file of the index is damaged, truncated or missing; ``path`` names it."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class IndexLocked(SearchError):
    """Another writer holds the index's write lock; ``holder`` says who, when it is known."""

    def __init__(self, message: str, holder: str | None = None) -> None:
        super().__init__(message)
        self.holder = holder


class IncompatibleIndex(SearchError):
    """The index was written in a format (or with an analyzer) this version cannot read."""


class QuerySyntaxError(SearchError):
    """The query cannot be read (an unbalanced quote, say); ``position`` is the character offset."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} (at position {position})")
        self.position = position


class InvalidDocument(SearchError):
    """A document cannot be indexed as given (missing id, text that is not a string, bad metadata...)."""


class InvalidArgument(SearchError, ValueError):
    """A parameter is out of range or of the wrong type (``k=-1``, ``k1=nan``, an unknown ``lang``).

    Also a ``ValueError``, so code written before it existed keeps catching it."""


class DocumentNotFound(SearchError, KeyError):
    """No document (or passage) with that id is in the index. Also a ``KeyError``, for compatibility."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class WorkerFailed(SearchError):
    """An indexing worker process raised an exception or died; nothing of its ``add_many`` call is kept."""
