"""Reading the command line without typer: the ``-word`` rule every command follows, and the fast path of
``search query``.

``search query`` is the command people and scripts run most, and typer's import (click, its help
machinery) costs about as much as the search itself. ``parse_query`` reads the query options from the
same table the typer command declares (``QUERY_OPTIONS``; a test keeps the two equal) and returns None
for anything else (``--help``, a mistake, an option it does not know), which ``cli.main`` then hands to
typer, so help and every error message still come from one place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def split_arguments(args: list[str], takes_value: dict[str, bool]) -> list[str]:
    """Options first, then ``--``, then every argument: a word starting with one ``-`` that is not an option
    (``-pajak``) is an argument. ``takes_value`` maps each option name to whether a value follows it."""
    opts: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        i += 1
        if a == "--":
            rest.extend(args[i:])
            break
        name = a.split("=", 1)[0] if a.startswith("--") else a
        if name in takes_value:
            opts.append(a)
            if takes_value[name] and "=" not in a and i < len(args):
                opts.append(args[i])
                i += 1
        elif a.startswith("--") or (
            len(a) > 2 and takes_value.get(a[:2]) and a[2:].lstrip("-").replace(".", "", 1).isdigit()
        ):
            opts.append(a)  # an unknown long option (reported as one), or a short option with its number: -k5
        else:
            rest.append(a)
    return [*opts, "--", *rest] if rest else opts


#: ``search query``'s options: name -> (parameter, type, minimum, maximum); type None is a flag.
QUERY_OPTIONS: dict[str, tuple[str, Any, int | None, int | None]] = {
    "-k": ("k", int, 0, 10_000),  # 0: no hits, as Index.search and the HTTP API take it (README)
    "--offset": ("offset", int, 0, None),
    "--lang": ("lang", str, None, None),
    "-l": ("lang", str, None, None),
    "--all-passages": ("all_passages", None, None, None),
    "--json": ("json_out", None, None, None),
    "--fuzzy": ("fuzzy", None, None, None),
    "--prefix-last": ("prefix_last", None, None, None),
    "--index": ("index", Path, None, None),
    "-i": ("index", Path, None, None),
    "--ray": ("ray", str, None, None),
    "--filter": ("filter", str, None, None),
    "--facet": ("facet", list[str], None, None),  # repeatable: the values are collected
}


def parse_query(args: list[str]) -> tuple[list[str], dict[str, Any], bool] | None:
    """``search query``'s arguments as (words, options, debug), or None to let typer read them."""
    takes_value = {name: spec[1] is not None for name, spec in QUERY_OPTIONS.items()}
    takes_value["--debug"] = False
    split = split_arguments(args, takes_value)
    end = split.index("--") if "--" in split else len(split)
    opts, words = split[:end], split[end + 1 :]
    if not words:
        return None
    values: dict[str, Any] = {}
    debug = False
    i = 0
    while i < len(opts):
        name, _, attached = opts[i].partition("=") if opts[i].startswith("--") else (opts[i], "", "")
        i += 1
        if name == "--debug" and not attached:
            debug = True
            continue
        if name not in QUERY_OPTIONS:
            if len(name) > 2 and name[:2] in QUERY_OPTIONS:  # -k5
                name, attached = name[:2], name[2:]
            else:
                return None
        param, kind, low, high = QUERY_OPTIONS[name]
        if kind is None:
            if attached:
                return None
            values[param] = True
            continue
        if not attached:
            if i >= len(opts):
                return None
            attached = opts[i]
            i += 1
        if kind is int:
            try:
                number = int(attached)
            except ValueError:
                return None
            if (low is not None and number < low) or (high is not None and number > high):
                return None
            values[param] = number
        elif kind == list[str]:
            values.setdefault(param, []).append(attached)
        else:
            values[param] = kind(attached)
    return words, values, debug
