"""The inference engine of a trainable model: PyTorch eager, or its network in ONNX Runtime.

Every inference path (``mvface.load``, ``create_model(..., engine=...)``, ``mvface detect``,
``eval``, ``demo``, ``compare``, the benchmarks) picks the engine here. Only the network call
changes: a model's ``predict`` (crop policy, passes, flip averaging, mapping back to image
pixels, head pose) is its own code on either engine, so the two differ by float32 rounding.

* ``torch``: the model as built (PyTorch eager), on ``device``.
* ``onnx``: the part of the network ``predict`` calls (:data:`EXPORTED_METHODS`) runs in an ONNX
  Runtime session (:class:`OrtNetwork` stands in for ``model.net``); small submodules outside it
  stay in torch. On one CPU thread the default model ``fast`` takes about a quarter of its eager
  time per face (2.06 vs 8.01 ms, ``mvface bench inference``).
* ``auto``: ``onnx`` on the CPU, ``torch`` on CUDA.

The ONNX graph is exported from the model's weights once and cached (:func:`cached_onnx`) in
:func:`onnx_cache_dir`, keyed by a hash of the weights, the model's config, the mvface, torch,
onnx and onnxruntime versions and the export options. Before a graph enters the cache its
outputs are checked against PyTorch on seeded random crops (:func:`network_parity`, tolerance
:data:`PARITY_RTOL`). A graph that fails the check is recorded as failed (not exported again):
``engine="auto"`` then falls back to torch with a one-line :class:`EngineWarning`;
``engine="onnx"`` raises :class:`~mvface.errors.NotAvailableError`. The same happens when
onnxruntime cannot be imported or the model cannot be exported.

Families without a torch network (``dlib``, the ``teacher`` ensemble) ignore the engine. A model
on the ``onnx`` engine is for inference only: train the torch model (``engine="torch"``).
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import hashlib
import importlib.metadata
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from mvface._io import atomic_path, atomic_write_text
from mvface._version import __version__
from mvface.errors import BadInputError, NotAvailableError
from mvface.models.base import LandmarkModel
from mvface.models.mediapipe_mesh import denormal_mode_restored
from mvface.models.onnx_graph import export_module, export_onnx
from mvface.models.trainable import TorchLandmarkModel, eval_mode

__all__ = [
    "CACHE_ENV_VAR",
    "DEVICES",
    "ENGINES",
    "EXPORTED_METHODS",
    "PARITY_RTOL",
    "EngineWarning",
    "OrtModule",
    "OrtNetwork",
    "cache_key",
    "cached_module_onnx",
    "cached_onnx",
    "check_device",
    "default_engine",
    "engine_defaults",
    "export_network",
    "export_spec",
    "model_engine",
    "module_on_onnx",
    "network_parity",
    "onnx_cache_dir",
    "onnx_engine",
    "ort_session",
    "relative_difference",
    "resolve_engine",
    "with_engine",
]

Engine = Literal["auto", "onnx", "torch"]
Device = Literal["cpu", "cuda"]

#: Engine names: ``auto`` (ONNX Runtime on the CPU, torch on CUDA), ``onnx``, ``torch``.
ENGINES: tuple[str, ...] = ("auto", "onnx", "torch")
#: Device names.
DEVICES: tuple[str, ...] = ("cpu", "cuda")

#: The network method each family's ``predict`` calls (exported for ONNX Runtime), its output
#: names, and the submodules that stay in torch (small, outside the exported method).
EXPORTED_METHODS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "MediaPipe68": ("forward_mesh", ("mesh", "face_logit"), ("head",)),
    "TDDFAV2": ("params", ("params",), ("basis",)),
}
_DEFAULT_METHOD: tuple[str, tuple[str, ...], tuple[str, ...]] = ("forward", ("points",), ())

#: ONNX opset of the engine's graphs.
OPSET = 17

#: Largest accepted difference between ONNX Runtime and PyTorch, relative to the largest
#: magnitude of the output (at least 1): 0.008 crop px for ``fast``'s mesh (up to ~80 px).
#: Measured: 4e-7 (``fast``, ``base``), 5e-7 (``3ddfa-v2``'s raw 3DMM parameters).
PARITY_RTOL = 1e-4

#: Environment variable naming the folder of cached ONNX graphs.
CACHE_ENV_VAR = "MVFACE_CACHE"

_DEFAULTS: contextvars.ContextVar[tuple[str, str]] = contextvars.ContextVar(
    "mvface_engine_defaults", default=("torch", "cpu")
)


class EngineWarning(UserWarning):
    """The ONNX Runtime engine could not be used; the model runs in PyTorch instead."""


# ------------------------------------------------------------------------ choosing


def default_engine() -> tuple[str, str]:
    """``(engine, device)`` that :func:`~mvface.models.create_model` uses when given none:
    ``("torch", "cpu")`` (the trainable model) unless :func:`engine_defaults` set others."""
    return _DEFAULTS.get()


@contextlib.contextmanager
def engine_defaults(engine: str = "auto", device: str = "cpu") -> Iterator[None]:
    """Inside the block, models created without an engine get ``engine`` on ``device``.

    For code that creates its models deep inside (``mvface demo``, ``mvface compare``).
    """
    check_engine(engine)
    token = _DEFAULTS.set((engine, device))
    try:
        yield
    finally:
        _DEFAULTS.reset(token)


def check_engine(engine: str) -> str:
    """``engine`` if it is one of :data:`ENGINES`, else ``ValueError``."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose from: {', '.join(ENGINES)}")
    return engine


def check_device(device: str) -> torch.device:
    """The torch device of ``device`` (``"cpu"`` or ``"cuda"``/``"cuda:N"``).

    Raises:
        ValueError: another name.
        NotAvailableError: CUDA asked for where torch sees no GPU.
    """
    if device != "cpu" and device != "cuda" and not device.startswith("cuda:"):
        raise ValueError(f"unknown device {device!r}; choose from: {', '.join(DEVICES)}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise NotAvailableError(
            f"device {device!r}: no CUDA GPU is available here (torch.cuda.is_available() is "
            "False); use --device cpu"
        )
    return torch.device(device)


def resolve_engine(engine: str, device: str) -> str:
    """``"onnx"`` or ``"torch"``: what ``engine`` means on ``device`` (``auto``: ONNX Runtime
    on the CPU, torch on CUDA)."""
    if check_engine(engine) != "auto":
        return engine
    return "torch" if device.startswith("cuda") else "onnx"


def model_engine(model: LandmarkModel) -> str:
    """``"onnx"`` or ``"torch"`` for a trainable model; ``"native"`` for other families."""
    if not isinstance(model, TorchLandmarkModel):
        return "native"
    return "onnx" if isinstance(model.net, OrtNetwork) else "torch"


def with_engine(
    model: LandmarkModel,
    engine: str = "auto",
    device: str = "cpu",
    threads: int | None = None,
    cache: Path | None = None,
) -> LandmarkModel:
    """``model`` on the chosen engine and device (see the module docstring).

    Args:
        model: any landmark model; only trainable ones (:class:`TorchLandmarkModel`) change.
        engine: ``"auto"``, ``"onnx"`` or ``"torch"``.
        device: ``"cpu"`` or ``"cuda"``.
        threads: ONNX Runtime intra-op threads (``None``: ``torch.get_num_threads()`` now;
            a family's :attr:`~TorchLandmarkModel.network_threads` wins).
        cache: folder of cached graphs (``None``: :func:`onnx_cache_dir`).

    Returns:
        ``torch``: ``model`` itself, its network moved to ``device``. ``onnx``: a shallow copy
        whose ``net`` is an :class:`OrtNetwork`.

    Raises:
        NotAvailableError: CUDA without a GPU; ``engine="onnx"`` where ONNX Runtime cannot be
            used (not installed, no CUDA provider, export failed, parity check failed).
    """
    requested = check_engine(engine)
    torch_device = check_device(device)
    if not isinstance(model, TorchLandmarkModel):
        return model
    engine = resolve_engine(engine, device)
    if requested == "auto" and not (model.trained or model.allow_untrained):
        engine = "torch"  # it refuses to predict anyway, with the reason
    if engine == "onnx":
        try:
            path = cached_onnx(model, cache)
            count = model.network_threads or threads or torch.get_num_threads()
            return onnx_engine(model, path, count, device=torch_device.type)
        except NotAvailableError as exc:
            if requested == "onnx":
                raise
            warnings.warn(
                f"{model.config.name}: ONNX Runtime not used, running PyTorch instead ({exc})",
                EngineWarning,
                stacklevel=2,
            )
    if model_engine(model) == "onnx":
        raise BadInputError(model.config.name, "already on the onnx engine; create it again")
    model.net.to(torch_device)
    return model


# ------------------------------------------------------------------------ export and cache


def export_spec(model: TorchLandmarkModel) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """``(method, output names, submodules kept in torch)`` of ``model``'s family."""
    return EXPORTED_METHODS.get(type(model).__name__, _DEFAULT_METHOD)


def export_network(model: TorchLandmarkModel, path: str | Path, opset: int = OPSET) -> Path:
    """Export the network method ``model.predict`` calls (:data:`EXPORTED_METHODS`) to ONNX.

    Input ``crops`` ``(batch, 3, S, S)`` normalized; outputs as named in
    :data:`EXPORTED_METHODS`; the batch dimension is dynamic (see :func:`export_onnx`).
    """
    method, outputs, _ = export_spec(model)
    return export_onnx(model, path, opset, method=method, outputs=outputs)


def onnx_cache_dir() -> Path:
    """Where cached graphs go: ``$MVFACE_CACHE``, else ``$XDG_CACHE_HOME/mvface/onnx``, else
    ``~/.cache/mvface/onnx``."""
    env = os.environ.get(CACHE_ENV_VAR)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mvface" / "onnx"


def _package_version(name: str) -> str:
    """An installed distribution's version, without importing it (``onnx`` takes ~1 s)."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def _versions() -> dict[str, str]:
    return {
        "mvface": __version__,
        "torch": torch.__version__,
        "onnx": _package_version("onnx"),
        "onnxruntime": _package_version("onnxruntime"),
    }


def _graph_key(header: Mapping[str, Any], net: nn.Module) -> str:
    """SHA-256 (hex) of ``header`` (JSON) and every tensor of ``net`` (names, shapes, values)."""
    digest = hashlib.sha256(json.dumps(header, sort_keys=True, default=str).encode())
    for name, value in net.state_dict().items():
        digest.update(f"{name}:{tuple(value.shape)}:{value.dtype};".encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def cache_key(model: TorchLandmarkModel, opset: int = OPSET) -> str:
    """SHA-256 (hex) of what decides the exported graph: the network's tensors (names, shapes,
    dtypes, values), the model's class and config, the export options, and the versions of
    mvface, torch, onnx and onnxruntime (the export and its pad folding depend on them)."""
    method, outputs, kept = export_spec(model)
    header = {
        "family": type(model).__name__,
        "config": model.config.to_dict(),
        "export": {"method": method, "outputs": outputs, "kept": kept, "opset": opset},
        "versions": _versions(),
    }
    return _graph_key(header, model.net)


def cached_onnx(model: TorchLandmarkModel, cache: Path | None = None, opset: int = OPSET) -> Path:
    """The parity-checked ONNX graph of ``model``'s network, exported on the first call.

    The graph is written to ``<cache>/<name>-<key>.onnx`` atomically (concurrent processes
    may both export; the last rename wins, both files are equal). A graph that fails
    :func:`network_parity` is not kept; ``<name>-<key>.failed`` records why, so later calls
    fail at once. A cache folder that cannot be written gets a temporary file instead.

    Raises:
        NotAvailableError: onnxruntime is absent, the model cannot be exported (no trained
            weights), or the parity check failed (now or before).
    """
    import_onnxruntime()

    def export(path: Path) -> None:
        export_network(model, path, opset)

    def check(path: Path) -> float:
        return network_parity(model, onnx_engine(model, path, threads=1))

    return _cached(model.config.name, cache_key(model, opset), cache, export, check)


def cached_module_onnx(
    net: nn.Module,
    name: str,
    input_size: int,
    outputs: tuple[str, ...],
    cache: Path | None = None,
    opset: int = OPSET,
) -> Path:
    """:func:`cached_onnx` for a plain network (a face detector's): ``net(images)`` with
    images ``(batch, 3, S, S)`` → ``outputs``; checked on seeded inputs uniform in [-1, 1]."""
    import_onnxruntime()
    header = {
        "module": type(net).__name__,
        "name": name,
        "export": {"input_size": input_size, "outputs": outputs, "opset": opset},
        "versions": _versions(),
    }

    def export(path: Path) -> None:
        export_module(net, path, input_size, outputs, opset)

    def check(path: Path) -> float:
        gen = torch.Generator().manual_seed(0)
        x = torch.rand(3, 3, input_size, input_size, generator=gen) * 2 - 1
        with eval_mode(net), torch.no_grad():
            ref = net(x)
        return relative_difference(ref, OrtModule(ort_session(path, 1), {})(x))

    return _cached(name, _graph_key(header, net), cache, export, check)


def _cached(
    name: str,
    key: str,
    cache: Path | None,
    export: Callable[[Path], None],
    check: Callable[[Path], float],
) -> Path:
    """The cache protocol of :func:`cached_onnx` for any graph: ``export(path)`` writes it,
    ``check(path)`` gives its difference from PyTorch (relative, :data:`PARITY_RTOL`)."""
    folder = cache if cache is not None else onnx_cache_dir()
    stem = f"{_safe(name)}-{key[:32]}"
    path, failed = folder / f"{stem}.onnx", folder / f"{stem}.failed"
    if path.is_file():
        return path
    if failed.is_file():
        raise NotAvailableError(failed.read_text(encoding="utf-8").strip())
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            _export_checked(name, tmp, export, check, failed)
        return path
    except OSError:  # a read-only cache: an unshared temporary graph for this process
        tmp_dir = Path(tempfile.mkdtemp(prefix="mvface-onnx-"))
        return _export_checked(name, tmp_dir / f"{stem}.onnx", export, check, None)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name) or "model"


def _export_checked(
    name: str,
    path: Path,
    export: Callable[[Path], None],
    check: Callable[[Path], float],
    failed: Path | None,
) -> Path:
    try:
        export(path)
    except NotAvailableError:
        raise
    except Exception as exc:  # the tracer's and the exporter's own exception types
        problem = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise NotAvailableError(f"{name}: ONNX export failed ({problem})") from None
    diff = check(path)
    if not diff <= PARITY_RTOL:
        reason = (
            f"{name}: ONNX Runtime and PyTorch outputs differ by {diff:.2g} of their scale "
            f"(tolerance {PARITY_RTOL:g})"
        )
        if failed is not None:
            with contextlib.suppress(OSError):
                atomic_write_text(failed, reason + "\n")
        raise NotAvailableError(reason)
    return path


def relative_difference(reference: Any, other: Any) -> float:
    """Largest difference between two (tuples of) tensors, relative to each reference
    output's largest magnitude (at least 1); ``inf`` for a shape mismatch or a NaN."""
    refs = reference if isinstance(reference, tuple) else (reference,)
    outs = other if isinstance(other, tuple) else (other,)
    if len(refs) != len(outs):
        return float("inf")
    worst = 0.0
    for a, b in zip(refs, outs, strict=True):
        a_np, b_np = a.detach().cpu().double().numpy(), b.detach().cpu().double().numpy()
        if a_np.shape != b_np.shape:
            return float("inf")
        scale = max(1.0, float(np.abs(a_np).max(initial=0.0)))
        worst = max(worst, float(np.abs(a_np - b_np).max(initial=0.0)) / scale)
    return worst if np.isfinite(worst) else float("inf")


def network_parity(
    model: TorchLandmarkModel, engine: TorchLandmarkModel, batch: int = 3, seed: int = 0
) -> float:
    """Largest difference between the two engines' network outputs, relative to the output's
    largest magnitude (at least 1), on ``batch`` seeded random crops in the normalized range.

    ``batch`` differs from the export's example batch (2) to exercise the dynamic axis.
    """
    method, _, _ = export_spec(model)
    size = model.config.input_size
    gen = torch.Generator().manual_seed(seed)
    crops = torch.randint(0, 256, (batch, 3, size, size), generator=gen).float()
    x = model.normalize(crops)
    with eval_mode(model.net), torch.no_grad():
        ref = getattr(model.net, method)(x.to(model.device))
    return relative_difference(ref, getattr(engine.net, method)(x))


# ------------------------------------------------------------------------ the runtime


def import_onnxruntime() -> Any:
    """The ``onnxruntime`` module.

    Raises:
        NotAvailableError: not installed.
    """
    try:
        import onnxruntime as ort
    except ImportError:
        raise NotAvailableError("onnxruntime is not installed: pip install onnxruntime") from None
    return ort


def ort_session(path: str | Path, threads: int, spinning: bool = False, device: str = "cpu") -> Any:
    """An ONNX Runtime session with ``threads`` intra-op threads (denormals flushed).

    ``spinning=False`` makes idle pool threads sleep instead of spin-waiting for work: on a
    shared or oversubscribed machine spinning threads take the cores the working ones need.

    Raises:
        NotAvailableError: onnxruntime is not installed, or has no CUDA provider for ``cuda``.
    """
    ort = import_onnxruntime()
    providers = ["CPUExecutionProvider"]
    if device == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise NotAvailableError(
                "this onnxruntime has no CUDA provider (pip install onnxruntime-gpu); use "
                "--engine torch (or auto) on CUDA"
            )
        providers = ["CUDAExecutionProvider", *providers]
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.set_denormal_as_zero", "1")
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    with denormal_mode_restored():  # the option also switches the calling thread's mode
        try:
            return ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise BadInputError(path, f"not a loadable ONNX model ({type(exc).__name__})") from None


def _run_session(session: Any, x: torch.Tensor) -> Any:
    """Run a session on ``crops`` ``x``: its output as a tensor, or a tuple of several."""
    crops = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
    with denormal_mode_restored():  # flushed while the session runs on this thread only
        torch.set_flush_denormal(True)
        outputs = [torch.from_numpy(o) for o in session.run(None, {"crops": crops})]
    return outputs[0] if len(outputs) == 1 else tuple(outputs)


class OrtNetwork(nn.Module):
    """Stands in for a model's ``net``: the exported method runs in ONNX Runtime.

    Args:
        session: the ONNX Runtime session of :func:`export_network`'s file.
        method: the network method it replaces (``forward``, ``params``, ``forward_mesh``).
        kept: submodules of the original network that stay in torch (e.g. ``head``).
    """

    def __init__(self, session: Any, method: str, kept: Mapping[str, nn.Module]) -> None:
        super().__init__()
        self.session = session
        # a parameter, so ``model.device`` (next(net.parameters())) still answers "cpu"
        self.anchor = nn.Parameter(torch.zeros(0), requires_grad=False)
        for name, module in kept.items():
            self.add_module(name, module)
        self._method = method
        if method != "forward":
            setattr(self, method, self._run)
        self.eval()  # the session is an inference graph; callers need not switch modes

    def _run(self, x: torch.Tensor) -> Any:
        return _run_session(self.session, x)

    def forward(self, x: torch.Tensor) -> Any:
        """The exported method when it is ``forward``."""
        if self._method != "forward":
            raise TypeError(f"this ONNX network replaces {self._method!r}, not forward")
        return self._run(x)


def _on_cpu(module: nn.Module) -> nn.Module:
    """``module`` if its tensors are on the CPU, else a CPU copy (the original stays put)."""
    tensors = [*module.parameters(), *module.buffers()]
    return module if all(t.device.type == "cpu" for t in tensors) else copy.deepcopy(module).cpu()


def onnx_engine(
    model: TorchLandmarkModel,
    onnx_path: str | Path,
    threads: int,
    spinning: bool = False,
    device: str = "cpu",
) -> TorchLandmarkModel:
    """A shallow copy of ``model`` whose network runs in ONNX Runtime (crops and mapping as is).

    The session gets ``threads`` intra-op threads, or the family's ``network_threads``. The
    submodules kept in torch stay on the CPU (ONNX Runtime returns CPU arrays).
    """
    method, _, kept_names = export_spec(model)
    kept = {name: _on_cpu(getattr(model.net, name)) for name in kept_names}
    engine = copy.copy(model)
    session = ort_session(onnx_path, model.network_threads or threads, spinning, device)
    engine.net = OrtNetwork(session, method, kept)
    return engine


class OrtModule(nn.Module):
    """Stands in for a plain network (a face detector's): ``forward`` runs in ONNX Runtime.

    Args:
        session: the ONNX Runtime session of :func:`cached_module_onnx`'s file.
        kept: other attributes callers use (e.g. the original network's ``decode``).
    """

    def __init__(self, session: Any, kept: Mapping[str, Any]) -> None:
        super().__init__()
        self.session = session
        for name, value in kept.items():
            setattr(self, name, value)
        self.eval()

    def forward(self, x: torch.Tensor) -> Any:
        """``(batch, 3, S, S)`` → the network's outputs (a tuple when several), CPU tensors."""
        return _run_session(self.session, x)


def module_on_onnx(
    net: nn.Module,
    name: str,
    input_size: int,
    outputs: tuple[str, ...],
    kept: tuple[str, ...] = (),
    threads: int | None = None,
    cache: Path | None = None,
) -> OrtModule:
    """``net`` replaced by its cached, parity-checked ONNX graph (see :class:`OrtModule`).

    Raises:
        NotAvailableError: onnxruntime is absent, or the export or its parity check failed.
    """
    path = cached_module_onnx(net, name, input_size, outputs, cache)
    session = ort_session(path, threads or torch.get_num_threads())
    return OrtModule(session, {attr: getattr(net, attr) for attr in kept})
