"""telusur's search core: a persistent, segment-based passage index with exact BM25 per language.

    from search import Index, Document
    index = Index.create("idx")
    with index.writer() as w:
        w.add(Document(id="ru-1", text="...", title="..."))
    hits = index.search("Upper Lars")

Never prints and never imports the CLI; data flows text -> analyzers -> writer -> segments -> searcher.
"""

from .bm25 import Explanation
from .documents import Document
from .errors import (
    DocumentNotFound,
    IncompatibleIndex,
    IndexCorrupt,
    IndexLocked,
    IndexNotFound,
    InvalidArgument,
    InvalidDocument,
    QuerySyntaxError,
    SearchError,
    WorkerFailed,
)
from .index import Hit, Index
from .query import ParsedQuery, parse_query, plain_query
from .sharded import ShardedIndex, ShardedWriter
from .writer import IndexWriter

__version__ = "0.1.0"

__all__ = [
    "Document",
    "DocumentNotFound",
    "Explanation",
    "Hit",
    "IncompatibleIndex",
    "Index",
    "IndexCorrupt",
    "IndexLocked",
    "IndexNotFound",
    "IndexWriter",
    "InvalidArgument",
    "InvalidDocument",
    "ParsedQuery",
    "QuerySyntaxError",
    "SearchError",
    "ShardedIndex",
    "ShardedWriter",
    "WorkerFailed",
    "parse_query",
    "plain_query",
]
