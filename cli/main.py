"""The ``search`` console script: ``search query`` on a fast path, every other command through typer.

A warm ``search query`` should cost little more than Python and numpy starting; typer (with its click)
is a fifth of that, so a well-formed ``search query`` is read by ``cli.arguments.parse_query`` and run by
``cli.reading.run_query`` with the errors of ``cli.errors``, and typer is imported only for everything
else (help, mistakes, the other commands), which gives the same output and exit codes.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] == ["query"]:
        from .arguments import parse_query

        parsed = parse_query(args[1:])
        if parsed is not None:
            sys.exit(_run_query(*parsed))
    from .app import main as typer_main

    sys.argv[1:] = args
    typer_main()


def _run_query(words: list[str], options: dict, debug: bool) -> int:
    from . import errors, output
    from .reading import run_query

    try:
        run_query(words, **options)
        sys.stdout.flush()  # here, not at exit, so a reader that went away is handled like any error
    except (Exception, KeyboardInterrupt) as e:
        code, message = errors.describe(e, debug)
        if message:
            output.error(f"error: {message}")
        return code
    return 0
