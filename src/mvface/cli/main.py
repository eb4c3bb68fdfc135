"""The ``mvface`` command: one thin module per subcommand, all calling the library."""

from __future__ import annotations

import typer

from mvface import __version__
from mvface.cli import detect_cmd, eval_cmd, export_cmd, synth_cmd, train_cmd
from mvface.cli._common import set_debug
from mvface.cli.bench_cmd import app as bench_app
from mvface.cli.compare_cmd import compare_command
from mvface.cli.demo_cmd import demo_command

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

if __name__ == "__main__":  # pragma: no cover
    app()
