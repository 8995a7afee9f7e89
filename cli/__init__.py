"""The ``search`` command line: a typer app over the ``search`` API. The only package importing typer/rich."""
