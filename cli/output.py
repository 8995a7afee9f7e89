"""Rendering for people: hits with emphasised matches, token tables, stats. Only the CLI imports rich.

On a terminal the matched words are bold and coloured (NO_COLOR turns that off, FORCE_COLOR on) and
snippets are wrapped at word boundaries to the terminal's width with a hanging indent; when stdout is
not a terminal the output is plain text, one line per snippet, and matched words are marked
``**like this**``. Hits are written without rich (its import costs more than a query); tables and the
progress bar load it when they are drawn.
"""

from __future__ import annotations

import errno
import os
import shutil
import sys
from typing import TYPE_CHECKING, Any, TextIO

from search import Hit

if TYPE_CHECKING:  # rich costs ~25 ms of imports: only the commands that draw tables or bars load it
    from rich.console import Console

INDENT = "   "
_BOLD, _ITALIC, _CYAN, _MATCH, _RESET = "\x1b[1m", "\x1b[3m", "\x1b[36m", "\x1b[1;35m", "\x1b[0m"


def console() -> Console:
    """A rich console on stdout (tables, stats); plain when stdout is not a terminal."""
    from rich.console import Console

    out = Console(highlight=False, soft_wrap=True)
    out.on_broken_pipe = _broken_pipe  # type: ignore[method-assign]  # rich would exit 1 by itself
    return out


def _broken_pipe() -> None:
    """rich found stdout's reader gone; raise it so the error boundary ends quietly with 128 + SIGPIPE."""
    raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


def error(line: str) -> None:
    """One message line on stderr (errors and summaries; never styled, so scripts can read it)."""
    print(line, file=sys.stderr, flush=True)


def error_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def styled_output(stream: TextIO) -> bool:
    """Whether to style ``stream``: a terminal (or FORCE_COLOR set), unless NO_COLOR is set or TERM=dumb."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return stream.isatty() and os.environ.get("TERM") != "dumb"


def output_width(stream: TextIO) -> int | None:
    """The width to wrap at: the terminal's (or ``COLUMNS``); None (no wrapping) for a pipe or a file."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if not stream.isatty():
        return None
    return shutil.get_terminal_size().columns


def emphasise(text: str, spans: list[tuple[int, int]], styled: bool) -> list[tuple[str, int]]:
    """``text`` as words, each (rendered word, visible width): matched words bold and coloured when
    ``styled``, marked ``**like this**`` otherwise. ``text`` has single spaces between words."""
    marks = sorted(spans)
    words: list[tuple[str, int]] = []
    pos = 0
    for word in text.split(" "):
        start, end = pos, pos + len(word)
        pos = end + 1
        if not word:
            continue
        out, width, cur = [], 0, start
        for s, e in marks:
            s, e = max(s, cur), min(e, end)
            if s >= e:
                continue
            out.append(text[cur:s])
            width += s - cur
            match = text[s:e]
            out.append(f"{_MATCH}{match}{_RESET}" if styled else f"**{match}**")
            width += e - s + (0 if styled else 4)
            cur = e
        out.append(text[cur:end])
        width += end - cur
        words.append(("".join(out), width))
    return words


def wrap(words: list[tuple[str, int]], width: int | None, indent: str = INDENT) -> list[str]:
    """Greedy word wrap of rendered words at ``width`` columns, every line after ``indent`` (a hanging
    indent); ``None`` keeps one line. A word longer than a line gets a line of its own."""
    lines: list[str] = []
    line: list[str] = []
    used = 0
    room = None if width is None else max(20, width - len(indent) - 1)
    for rendered, w in words:
        if line and room is not None and used + 1 + w > room:
            lines.append(indent + " ".join(line))
            line, used = [], 0
        used += w + (1 if line else 0)
        line.append(rendered)
    if line:
        lines.append(indent + " ".join(line))
    return lines


def print_hits(stream: TextIO, query: str, hits: list[Hit], offset: int) -> None:
    """The hits for people: a heading line each, the title, the snippet wrapped with a hanging indent."""
    if not hits:
        stream.write(f"No results for {query!r}.\n")
        return
    styled = styled_output(stream)
    width = output_width(stream)
    bold, italic, cyan, reset = (_BOLD, _ITALIC, _CYAN, _RESET) if styled else ("", "", "", "")
    out: list[str] = []
    for rank, hit in enumerate(hits, start=offset + 1):
        out.append(
            f"{bold}{rank}. {reset}{cyan}{hit.score:.4f}{reset}  {bold}{hit.doc_id}{reset}"
            f"  [{hit.lang}]  passage {hit.passage}"
        )
        if hit.title:
            out.append(f"{INDENT}{italic}{hit.title}{reset}")
        snippet = " ".join(hit.snippet.split())  # collapse whitespace, keeping highlight offsets aligned
        spans = _collapse_spans(hit.snippet, hit.snippet_highlights)
        out.extend(wrap(emphasise(snippet, spans, styled), width))
        out.append("")
    stream.write("\n".join(out) + "\n")


def print_facets(stream: TextIO, facets: dict[str, dict]) -> None:
    """Facet counts for people: one line per field, its values most frequent first (``value (count)``)."""
    out = []
    for name, counts in facets.items():
        values = ", ".join(f"{v} ({n})" for v, n in counts.items()) or "no values"
        out.append(f"{name}: {values}")
    stream.write("\n".join(out) + "\n")


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
    from rich.table import Table

    table = Table(title=f"tokens ({lang})", show_edge=False)
    for col in ("term", "position", "start", "end"):
        table.add_column(col, justify="left" if col == "term" else "right")
    for t in tokens:
        table.add_row(t.term, str(t.position), str(t.start), str(t.end))
    con.print(table)


def print_stats(stream: TextIO, stats: dict[str, Any]) -> None:
    """``search stats`` for people: one labelled line per figure (a sharded index says its shard count)."""
    st = stats["settings"]
    lines = [
        f"index      {stats['path']}",
        *([f"shards     {stats['shards']}"] if "shards" in stats else []),
        f"documents  {stats['documents']}",
        f"passages   {stats['passages']}",
        f"segments   {stats['segments']} (generation {stats['generation']})",
        *(f"  {lang}: {s['passages']} passages, avgdl {s['avgdl']:.1f}" for lang, s in stats["languages"].items()),
        f"settings   passage_words={st['passage_words']} k1={st['k1']} b={st['b']} "
        f"default_language={st['default_language']}",
        f"size       {stats['size_bytes']:,} bytes",
    ]
    stream.write("\n".join(lines) + "\n")


def is_tty() -> bool:
    return sys.stderr.isatty()


def rate_column() -> Any:
    """A progress column with documents per second, for the indexing progress bar."""
    from rich.progress import ProgressColumn, Task
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text("" if speed is None else f"{speed:,.0f} docs/s")

    return RateColumn()
