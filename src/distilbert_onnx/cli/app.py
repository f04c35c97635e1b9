"""The `distilbert-onnx` click group and the error handling every command shares.

Problems a user can fix (a bad path, an occupied folder, a graph that fails validation, bad input)
end as one `Error: ...` line and exit status 1, never a traceback. Progress goes to stderr; results
(predictions, benchmark tables, info) go to stdout.
"""

from __future__ import annotations

import sys

import click

from .. import __version__
from ..errors import DistilbertOnnxError, ValidationError, os_error_line


class Cli(click.Group):
    """A click group that turns this package's errors into one-line messages."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ValidationError as exc:
            details = "".join(f"\n  {line}" for line in exc.report)
            raise click.ClickException(f"{exc}{details}") from None
        except DistilbertOnnxError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:  # a full disk, a path under a file or in /proc, a file that cannot be read
            raise click.ClickException(os_error_line(exc)) from None
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)


@click.group(cls=Cli, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="distilbert-onnx")
def main() -> None:
    """Take DistilBERT checkpoints to validated, fused and quantized ONNX, and run them."""


def progress(message: str) -> None:
    """A progress line on stderr."""
    click.echo(message, err=True)


def with_options(options):
    """Apply a list of click options to a command, in the order listed."""

    def apply(function):
        for option in reversed(options):
            function = option(function)
        return function

    return apply
