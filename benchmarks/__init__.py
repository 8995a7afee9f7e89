"""Benchmarks of telusur against whoosh, tantivy-py, bm25s and a bare analysis baseline (see README.md)."""
