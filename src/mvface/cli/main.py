"""The ``mvface`` command: one thin module per subcommand, all calling the library."""

from __future__ import annotations

from typing import Any

import typer
import typer.core
import typer.rich_utils

from mvface._version import __version__
from mvface.cli import detect_cmd, eval_cmd, export_cmd, synth_cmd, train_cmd
from mvface.cli._common import console, set_debug, shown
from mvface.cli.bench_cmd import app as bench_app
from mvface.cli.compare_cmd import compare_command
from mvface.cli.demo_cmd import demo_command

_type_of_option = typer.core.TyperOption.display_type_rich


def _type_unless_flag(self: typer.core.TyperOption, ctx: Any) -> str | None:
    # typer shows "<bool>" beside on/off flags (--draw, --quiet, --help), which take no value.
    return None if self.is_flag else _type_of_option(self, ctx)


def _usage_error(error: Any) -> None:
    # One "error: ..." line after the usage hint, instead of a Rich panel that wraps a long
    # message (a list of valid names) over several lines.
    if error.__class__.__name__ == "NoArgsIsHelpError":
        return
    ctx: Any = getattr(error, "ctx", None)
    if ctx is not None:
        console.print(ctx.get_usage(), markup=False, highlight=False, soft_wrap=True)
        if ctx.command.get_help_option(ctx) is not None:
            hint = f"Try '{ctx.command_path} {ctx.help_option_names[0]}' for help."
            console.print(hint, markup=False, highlight=False, soft_wrap=True)
    line = f"error: {shown(error.format_message())}"
    console.print(line, markup=False, highlight=False, soft_wrap=True)


typer.core.TyperOption.display_type_rich = _type_unless_flag  # type: ignore[method-assign]
typer.rich_utils.rich_format_error = _usage_error  # type: ignore[assignment]

app = typer.Typer(
    name="mvface",
    help="3D-aware facial landmark detection trained with multiview consistency.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mvface {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for expected errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """3D-aware facial landmark detection trained with multiview consistency."""
    set_debug(debug)


app.command(name="eval")(eval_cmd.eval_command)
app.command(name="eval-synthetic")(eval_cmd.eval_synthetic_command)
app.command(name="detect")(detect_cmd.detect_command)
app.add_typer(export_cmd.app, name="export")
app.command(name="train")(train_cmd.train_command)
app.command(name="finetune")(train_cmd.finetune_command)
app.add_typer(synth_cmd.app, name="synth")
# the command's name before `mvface synth preview`; kept so that scripts keep working
app.command(name="synth-preview", hidden=True)(synth_cmd.synth_preview_command)
app.command(name="demo")(demo_command)
app.command(name="compare")(compare_command)
app.add_typer(bench_app, name="bench")


def run(argv: list[str] | None = None) -> Any:
    """Run the ``mvface`` command (``python -m mvface`` and the console script)."""
    return app(args=argv, prog_name="mvface")


if __name__ == "__main__":  # pragma: no cover
    run()
