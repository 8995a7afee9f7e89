"""``search serve``: the HTTP JSON API and the search page, a layer beside the CLI commands.

Imported only by the ``serve`` command (so ``search query`` never loads FastAPI or uvicorn). This
module holds the configuration and starts uvicorn; ``app`` builds the ASGI application.

uvicorn runs the app from an import string so that ``--workers N`` can start N processes (spawned, so no
process inherits threads); each reads the configuration from one environment variable, opens its own
indexes (the segments are mmapped, so the OS shares their pages) and loads the models before it takes
its first connection.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

#: The environment variable the configuration travels in, from the command to every worker.
CONFIG_ENV = "TELUSUR_SERVE_CONFIG"
#: Where the bearer token for writes is read from when there is no ``--token-file``.
TOKEN_ENV = "TELUSUR_TOKEN"

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ServeConfigError(ValueError):
    """A configuration the server cannot start with (the command prints it as one ``error:`` line)."""


@dataclass
class ServeConfig:
    """What a server process needs: the indexes by name and the operational limits."""

    indexes: dict[str, str] = field(default_factory=dict)  # name -> index directory
    allow_writes: bool = False
    token_file: str | None = None
    time_limit: float = 10.0  # seconds a request may take before it is answered with 503
    max_body: int = 4 * 1024 * 1024  # bytes; a larger request body is answered with 413
    write_wait: float = 2.0  # seconds a write waits for the index's writer lock before 409
    quiet: bool = False  # no access log
    ray: str | None = None  # "local" or a Ray address: sharded indexes answer from shard actors (issue #23)
    cache_mb: int = 128  # per process: decoded postings and text blocks (3/4) and BM25 score arrays (1/4)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        return cls(**json.loads(text))

    def token(self) -> str | None:
        """The bearer token writes need: the token file's content, else ``$TELUSUR_TOKEN``; None if neither."""
        if self.token_file is not None:
            try:
                value = Path(self.token_file).read_text(encoding="utf-8").strip()
            except OSError as e:
                raise ServeConfigError(f"{self.token_file}: cannot read the token file ({e.strerror})") from None
            if not value:
                raise ServeConfigError(f"{self.token_file}: the token file is empty")
            return value
        value = os.environ.get(TOKEN_ENV, "").strip()
        return value or None


def parse_index_specs(specs: list[str]) -> dict[str, str]:
    """``NAME=PATH`` or ``PATH`` (named after its folder) -> {name: path}; names must be unique."""
    out: dict[str, str] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not NAME_RE.match(name):
            name, path = Path(spec).resolve().name, spec
        if not NAME_RE.match(name):
            raise ServeConfigError(
                f"cannot name the index {spec!r}: use --index NAME=PATH with a NAME of letters, digits, '.', '_', '-'"
            )
        if name in out:
            raise ServeConfigError(f"two indexes are named {name!r}; name them apart with --index NAME=PATH")
        out[name] = str(Path(path).resolve())
    return out


def check_config(config: ServeConfig) -> None:
    """Fail before binding a port: every index opens, and writes have a token."""
    from search import Index

    for path in config.indexes.values():
        Index.open(path)
    if config.allow_writes and config.token() is None:
        raise ServeConfigError(f"--allow-writes needs a bearer token: pass --token-file FILE or set {TOKEN_ENV}")


def run(config: ServeConfig, *, host: str, port: int, workers: int) -> None:
    """Serve until SIGTERM or Ctrl-C; in-flight requests are answered before the process exits."""
    import uvicorn

    from . import workers as pool

    check_config(config)
    os.environ[CONFIG_ENV] = config.to_json()
    grace = max(5.0, config.time_limit + 1.0)
    options: dict = dict(
        app="cli.serve.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        log_level="warning" if config.quiet else "info",
        access_log=False,  # the app writes its own line per request, with the time taken
        server_header=False,
        timeout_graceful_shutdown=grace,
        limit_concurrency=256,
    )
    if workers > 1 and pool.supported():
        try:
            pool.run_workers(options, host, port, workers, grace)
        except pool.PortUnavailable as e:
            raise ServeConfigError(str(e.strerror)) from None
        return
    uvicorn.run(**options, workers=workers)
