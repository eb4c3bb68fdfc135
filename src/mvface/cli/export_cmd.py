"""``mvface export onnx``: a model's network as ONNX, with a parity check."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mvface.cli._common import console, handle_errors
from mvface.export import export_onnx, onnx_parity
from mvface.models import create_model

app = typer.Typer(help="Export a model (ONNX).", no_args_is_help=True)


@app.command("onnx")
@handle_errors
def onnx_command(
    model: Annotated[str, typer.Option(help="Registered model name.")],
    out: Annotated[Path, typer.Option(help="Output .onnx file.")],
    weights: Annotated[str | None, typer.Option(help="Weights file or folder.")] = None,
    opset: Annotated[int, typer.Option(help="ONNX opset.")] = 17,
) -> None:
    """Export the network (crops → 68 points) with a dynamic batch and check it."""
    landmark_model = create_model(model, weights=weights)
    path = export_onnx(landmark_model, out, opset=opset)
    diff = onnx_parity(landmark_model, path)
    console.print(f"wrote {path}; ONNX Runtime vs PyTorch: max abs diff {diff:.2e} crop px")
