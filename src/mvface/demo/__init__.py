"""Demos: base vs. "+" model side by side (``mvface demo``) and comparison figures
(``mvface compare``).

>>> from mvface.demo import DemoConfig, run_demo
>>> result = run_demo(DemoConfig(output="out/demo"))  # doctest: +SKIP
>>> result.mean_nme  # {"base": ..., "base+": ...} in %, doctest: +SKIP
"""

from __future__ import annotations

from mvface.demo.comparison import CompareConfig, CompareImage, CompareResult, run_compare
from mvface.demo.items import DemoItem, packaged_views, predict_item, read_items
from mvface.demo.models import ModelSpec, load_models, parse_model_spec, parse_model_specs
from mvface.demo.side_by_side import DEMO_MODELS, DemoConfig, DemoResult, run_demo

__all__ = [
    "DEMO_MODELS",
    "CompareConfig",
    "CompareImage",
    "CompareResult",
    "DemoConfig",
    "DemoItem",
    "DemoResult",
    "ModelSpec",
    "load_models",
    "packaged_views",
    "parse_model_spec",
    "parse_model_specs",
    "predict_item",
    "read_items",
    "run_compare",
    "run_demo",
]
