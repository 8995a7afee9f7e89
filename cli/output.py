"""Rendering for people: hits with emphasised matches, token tables, stats. Only the CLI imports rich.

On a terminal the matched words are bold and coloured (rich honours NO_COLOR); when stdout is not a
terminal the output is plain text and matched words are marked ``**like this**``.
"""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.progress import ProgressColumn, Task
from rich.table import Table
from rich.text import Text

from search import Hit


def console() -> Console:
    """A console on stdout; plain (no styles, no wrapping surprises) when stdout is not a terminal."""
    return Console(highlight=False, soft_wrap=True)


def error(line: str) -> None:
    """One message line on stderr (errors and summaries; never styled, so scripts can read it)."""
    print(line, file=sys.stderr, flush=True)


def error_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def emphasise(text: str, spans: list[tuple[int, int]], styled: bool) -> Text:
    """``text`` with ``spans`` emphasised: bold on a terminal, ``**...**`` in plain output."""
    out = Text()
    pos = 0
    for start, end in sorted(spans):
        if start < pos:
            continue
        out.append(text[pos:start])
        if styled:
            out.append(text[start:end], style="bold magenta")
        else:
            out.append(f"**{text[start:end]}**")
        pos = end
    out.append(text[pos:])
    return out


def print_hits(con: Console, query: str, hits: list[Hit], offset: int) -> None:
    if not hits:
        con.print(f"No results for {query!r}.")
        return
    styled = con.is_terminal and not con.no_color
    for rank, hit in enumerate(hits, start=offset + 1):
        head = Text(f"{rank}. ", style="bold")
        head.append(f"{hit.score:.4f}  ", style="cyan" if styled else "")
        head.append(hit.doc_id, style="bold" if styled else "")
        head.append(f"  [{hit.lang}]  passage {hit.passage}")
        con.print(head)
        if hit.title:
            con.print(Text("   " + hit.title, style="italic" if styled else ""))
        snippet = " ".join(hit.snippet.split())
        # collapse whitespace while keeping highlight offsets aligned
        spans = _collapse_spans(hit.snippet, hit.snippet_highlights)
        con.print(Text("   ") + emphasise(snippet, spans, styled))
        con.print()


def _collapse_spans(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Map offsets in ``text`` to offsets in ``" ".join(text.split())``."""
    mapping = [0] * (len(text) + 1)
    out_pos = 0
    prev_space = True
    started = False
    for i, ch in enumerate(text):
        mapping[i] = out_pos
        if ch.isspace():
            if not prev_space and started:
                out_pos += 1
            prev_space = True
        else:
            started = True
            prev_space = False
            out_pos += 1
    mapping[len(text)] = out_pos
    return [(mapping[s], mapping[s] + (e - s)) for s, e in spans]


def print_tokens(con: Console, tokens: list[Any], lang: str) -> None:
    table = Table(title=f"tokens ({lang})", show_edge=False)
    for col in ("term", "position", "start", "end"):
        table.add_column(col, justify="left" if col == "term" else "right")
    for t in tokens:
        table.add_row(t.term, str(t.position), str(t.start), str(t.end))
    con.print(table)


def print_stats(con: Console, stats: dict[str, Any]) -> None:
    con.print(f"index      {stats['path']}")
    con.print(f"documents  {stats['documents']}")
    con.print(f"passages   {stats['passages']}")
    con.print(f"segments   {stats['segments']} (generation {stats['generation']})")
    for lang, s in stats["languages"].items():
        con.print(f"  {lang}: {s['passages']} passages, avgdl {s['avgdl']:.1f}")
    st = stats["settings"]
    con.print(
        f"settings   passage_words={st['passage_words']} k1={st['k1']} b={st['b']} "
        f"default_language={st['default_language']}"
    )
    con.print(f"size       {stats['size_bytes']:,} bytes")


def is_tty() -> bool:
    return sys.stderr.isatty()


class RateColumn(ProgressColumn):
    """Documents per second, for the indexing progress bar."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f} docs/s")
