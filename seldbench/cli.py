"""The ``seldbench`` command line: thin click commands that call the core and print results.

A :class:`~seldbench.errors.SeldbenchError` becomes one ``Error: ...`` line and exit code 2;
``SELDBENCH_TRACEBACK=1`` shows the traceback instead.
"""
from __future__ import annotations

import json
import os
import sys

import click

from seldbench.errors import SeldbenchError


class _Group(click.Group):
    """A click group that turns SeldbenchError into a one-line error."""

    def invoke(self, ctx: click.Context):  # noqa: D401
        try:
            return super().invoke(ctx)
        except SeldbenchError as exc:
            if os.environ.get("SELDBENCH_TRACEBACK"):
                raise
            raise click.ClickException(str(exc)) from None


class _SubGroup(_Group):
    pass


@click.group(cls=_Group)
@click.version_option(package_name="seldbench")
def main() -> None:
    """seldbench: benchmark suite for sound event localization and detection."""


# ---------------------------------------------------------------- data (datasets, synthetic set)


@main.group(cls=_SubGroup)
def data() -> None:
    """Generate and check datasets."""


def _echo_json(obj) -> None:
    from seldbench.io import nan_to_none

    click.echo(json.dumps(nan_to_none(obj)))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
