"""How the ``search`` command reads its arguments: typer's classes with three changes.

* Words that start with a single ``-`` and are not an option of the command are arguments, so
  ``search query -pajak`` and ``search query "-kedinasan pendidikan"`` are queries (``--`` still ends the
  options; ``--unknown`` is still an unknown option, so a typo is not silently searched for).
* Values are converted here (int, float, str, path, and lists of them, with the declared bounds) instead
  of through typer's pydantic adapters, which cost ~60 ms of imports on every run; messages name the
  option, the value and the valid range.
* A usage mistake is one ``error:`` line with the ``--help`` hint and exit code 2, not a box, and
  boolean flags show as flags in ``--help`` (no ``<bool>``).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

from typer._click.core import Context, Parameter
from typer._click.exceptions import BadParameter, ClickException, NoArgsIsHelpError, UsageError
from typer._click.globals import get_current_context
from typer._click.utils import echo
from typer.core import TyperCommand, TyperGroup, TyperOption
from typer.exceptions import Abort

from .arguments import split_arguments

EXIT_USAGE = 2
DEBUG = "--debug"


def debug_requested() -> bool:
    """Whether ``--debug`` was given (before the command, or among its options): show tracebacks."""
    ctx = get_current_context(silent=True)
    return bool(ctx is not None and ctx.meta.get(DEBUG))


class _Convert:
    """Turns one parameter's command-line string(s) into its declared type; stands in for typer's
    pydantic ``RuntimeParam`` (it has the same ``coerce`` method)."""

    def __init__(self, kind: type, many: bool, low: float | None, high: float | None) -> None:
        self.kind, self.many, self.low, self.high = kind, many, low, high

    def coerce(self, value: Any, param: Parameter, ctx: Context) -> Any:
        if value is None:
            return () if self.many else None
        if self.many:
            return [self._one(v, param, ctx) for v in value]
        return self._one(value, param, ctx)

    def _one(self, value: Any, param: Parameter, ctx: Context) -> Any:
        if self.kind is str:
            return str(value)
        if self.kind is bool:  # a flag (typer passes True/False; an environment variable passes text)
            if isinstance(value, bool):
                return value
            if str(value).strip().lower() in ("1", "true", "yes", "on", "0", "false", "no", "off", ""):
                return str(value).strip().lower() in ("1", "true", "yes", "on")
            raise BadParameter(f"{value!r} is not true or false", ctx=ctx, param=param)
        if self.kind is Path:
            return value if isinstance(value, Path) else Path(value)
        if self.kind is int:
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                raise BadParameter(f"{value!r} is not a whole number", ctx=ctx, param=param)
            try:
                number: float = int(value)
            except ValueError:
                raise BadParameter(f"{value!r} is not a whole number", ctx=ctx, param=param) from None
        else:  # float
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise BadParameter(f"{value!r} is not a number", ctx=ctx, param=param) from None
            if not math.isfinite(number):
                raise BadParameter(f"{value!r} is not a finite number", ctx=ctx, param=param)
        if (self.low is not None and number < self.low) or (self.high is not None and number > self.high):
            raise BadParameter(f"{value} is out of range ({_range(self.low, self.high)})", ctx=ctx, param=param)
        return number


def _range(low: float | None, high: float | None) -> str:
    if high is None:
        return f"at least {low}"
    if low is None:
        return f"at most {high}"
    return f"{low} to {high}"


def _converter(param: Parameter) -> _Convert | None:
    """Our converter for the parameter's type, or None to leave it to typer (a type we do not know)."""
    desc = getattr(param, "type_descriptor", None)
    if desc is None:
        return None
    annotation, many = desc.annotation, False
    if getattr(annotation, "__origin__", None) is list:
        annotation, many = annotation.__args__[0], True
    if annotation not in (int, float, str, Path, bool):
        return None
    info = desc.parameter_info
    return _Convert(annotation, many, info.min, info.max)


def _prepare(params: list[Parameter]) -> None:
    for p in params:
        conv = _converter(p)
        if conv is not None and hasattr(p, "_runtime_param"):
            p._runtime_param = conv  # type: ignore[attr-defined]  # typer builds its pydantic one lazily there
        flag = isinstance(p, TyperOption) and p.is_flag and not p.count
        if flag or (conv is not None and conv.kind is str and not isinstance(p, TyperOption)):
            p.display_type_rich = lambda ctx: None  # type: ignore[method-assign]  # a flag takes no value


class Command(TyperCommand):
    """A typer command that reads ``-word`` as an argument and converts values without pydantic."""

    def get_help_option(self, ctx: Context) -> Any:
        option = super().get_help_option(ctx)
        _prepare([option] if option is not None else [])
        return option

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        end = args.index("--") if "--" in args else len(args)
        if DEBUG in args[:end]:  # --debug belongs to the group; accepted among a command's options too
            ctx.meta[DEBUG] = True
            args = [a for a in args[:end] if a != DEBUG] + args[end:]
        takes_value: dict[str, bool] = {name: False for name in self.get_help_option_names(ctx)}
        for p in self.get_params(ctx):
            if isinstance(p, TyperOption):
                for name in (*p.opts, *p.secondary_opts):
                    takes_value[name] = not (p.is_flag or p.count)
        _prepare(self.params)
        return super().parse_args(ctx, split_arguments(args, takes_value))


class Group(TyperGroup):
    """The ``search`` group: usage mistakes as one ``error:`` line and exit 2, for every command."""

    def get_help_option(self, ctx: Context) -> Any:
        option = super().get_help_option(ctx)
        _prepare([option] if option is not None else [])
        return option

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        _prepare(self.params)
        return super().parse_args(ctx, args)

    def main(self, args: Any = None, prog_name: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, standalone_mode=False, **extra)
        except NoArgsIsHelpError as e:
            e.show()
            sys.exit(e.exit_code)
        except UsageError as e:
            path = e.ctx.command_path if e.ctx is not None else (prog_name or "search")
            echo(f"error: {_first_lower(e.format_message())} (see: {path} --help)", err=True)
            sys.exit(EXIT_USAGE)
        except ClickException as e:
            echo(f"error: {e.format_message()}", err=True)
            sys.exit(e.exit_code)
        except Abort:
            echo("error: aborted", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


def _first_lower(message: str) -> str:
    message = message.rstrip(".")
    return message[:1].lower() + message[1:] if message[1:2].islower() else message
