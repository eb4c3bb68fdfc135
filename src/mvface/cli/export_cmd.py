"""``mvface export onnx``: a model's network as ONNX, with a parity check."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mvface.cli._common import EXIT_USAGE, fail, handle_errors, say, shown
from mvface.cli._model_option import MODEL_HELP, check_model_spec, model_spec
from mvface.export import export_onnx, onnx_parity
from mvface.models import create_model
from mvface.models.trainable import TorchLandmarkModel

app = typer.Typer(help="Export a model (ONNX).", no_args_is_help=True)


@app.command("onnx")
@handle_errors
def onnx_command(
    model: Annotated[str, typer.Option(help=MODEL_HELP, callback=check_model_spec)],
    out: Annotated[Path, typer.Option(help="Output .onnx file.")],
    weights: Annotated[str | None, typer.Option(help="Weights file or folder.")] = None,
    # opset 7 fails on `where`; 9 to 21 export and match PyTorch (measured with torch 2.13)
    opset: Annotated[int, typer.Option(min=9, max=23, help="ONNX opset.")] = 17,
) -> None:
    """Export the network (crops → 68 points) with a dynamic batch and check it."""
    spec = model_spec(model, weights)
    landmark_model = create_model(spec.name, weights=spec.weights)
    if not isinstance(landmark_model, TorchLandmarkModel):  # as train and finetune: usage
        raise fail(
            f"model {spec.name!r} cannot be exported: it has no PyTorch network (only trainable "
            "families, mvface.models.trainable.TorchLandmarkModel, can be)",
            EXIT_USAGE,
        )
    path = export_onnx(landmark_model, out, opset=opset)
    diff = onnx_parity(landmark_model, path)
    say(f"wrote {shown(path)}; ONNX Runtime vs PyTorch: max abs diff {diff:.2e} crop px")
