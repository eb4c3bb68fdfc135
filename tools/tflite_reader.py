"""Read a TensorFlow Lite model, to port its weights to PyTorch (conversion tooling).

MediaPipe ships its networks as ``.tflite`` flatbuffers. mvface re-implements each architecture
in PyTorch (:mod:`mvface.models.mediapipe_mesh`, :mod:`mvface.detection.blazeface_net`) and the
converters of this folder (``convert_facemesh.py``, ``convert_blazeface.py``) use this module
only to *read* the file: the operator list (to check the architecture) and the constant tensors
(the weights). Nothing here runs a TFLite model, and nothing in the installed package imports it.

What is handled:

* float32 / float16 / int32 / uint8 / int64 constants; float16 constants reached through
  ``DEQUANTIZE`` are dequantized exactly (every fp16 value is an fp32 value);
* sparse constants (``SparsityParameters``, the TFLite ``DENSIFY`` op used by MediaPipe's
  pruned models) are densified on reading, block-sparse layouts included;
* builtin operator options (strides, padding, fused activation, ...) as a plain dict;
* conv kernels re-laid from TFLite's OHWI / 1HWC to PyTorch's OIHW
  (:func:`tflite_kernel_to_torch`).

Integer-quantized weights (int8 with scales) are not supported: no MediaPipe model used by
mvface has them.

The flatbuffer schema comes from the ``tflite`` package (``pip install mvface[convert]``),
imported lazily so that ``--help`` works without it.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from mvface.errors import BadInputError, NotAvailableError

__all__ = [
    "CONSTANT_UNPACKING_OPS",
    "TFLiteGraph",
    "TFLiteOperator",
    "TFLiteTensor",
    "densify",
    "read_tflite",
    "read_tflite_constants",
    "tflite_kernel_to_torch",
]

#: TFLite ``TensorType`` codes -> numpy dtypes (the types a constant may have here).
_NUMPY_DTYPES: dict[int, type[np.generic]] = {
    0: np.float32,
    1: np.float16,
    2: np.int32,
    3: np.uint8,
    4: np.int64,
    9: np.int8,
}

#: Operators that only unpack constants (fp16 -> fp32, sparse -> dense); a port folds them away.
CONSTANT_UNPACKING_OPS = frozenset({"DEQUANTIZE", "DENSIFY"})

#: ``DimensionType`` of ``DimensionMetadata``.
_DIM_DENSE, _DIM_SPARSE_CSR = 0, 1


# --------------------------------------------------------------------------------------------
# Graph
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TFLiteTensor:
    """One tensor of a TFLite subgraph.

    Attributes:
        index: position in the subgraph's tensor list (what operators refer to).
        name: tensor name as stored.
        shape: static shape (TFLite layout: NHWC activations, OHWI conv kernels, 1HWC depthwise
            kernels).
        dtype: numpy dtype name (``"float16"``, ...) or ``"tflite_type_<code>"`` for others.
        data: the constant value (dense, stored dtype), or ``None`` for activations and for
            constants computed by an operator (see :meth:`TFLiteGraph.constant`).
        sparse: whether the file stores the value sparsely (it is densified in ``data``).
        quantized: whether the tensor has integer-quantization scales.
    """

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    data: np.ndarray | None = field(default=None, repr=False, compare=False)
    sparse: bool = False
    quantized: bool = False


@dataclass(frozen=True)
class TFLiteOperator:
    """One operator of a TFLite subgraph.

    Attributes:
        index: position in the subgraph's operator list (an execution order).
        opcode: builtin operator name, e.g. ``"CONV_2D"``; ``"CUSTOM:<name>"`` for custom ops.
        inputs: input tensor indices (``-1`` for an omitted optional input).
        outputs: output tensor indices.
        options: builtin options in snake case, e.g. ``{"stride_h": 2, "padding": 0,
            "fused_activation_function": 1}`` (TFLite enums as their integer codes: padding
            SAME = 0 / VALID = 1; activation NONE = 0 / RELU = 1 / RELU6 = 3).
    """

    index: int
    opcode: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class TFLiteGraph:
    """The (single) subgraph of a TFLite model, read with :func:`read_tflite`.

    Attributes:
        path: the file it was read from.
        tensors: all tensors, by index.
        operators: all operators, in the file's execution order.
        inputs: indices of the graph input tensors.
        outputs: indices of the graph output tensors.
        description: the model's description string.
    """

    path: Path
    tensors: tuple[TFLiteTensor, ...]
    operators: tuple[TFLiteOperator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    description: str = ""

    def tensor(self, name: str) -> TFLiteTensor:
        """The tensor called ``name``.

        Raises:
            BadInputError: no such tensor.
        """
        for tensor in self.tensors:
            if tensor.name == name:
                return tensor
        raise BadInputError(self.path, f"no tensor named {name!r}")

    def producer(self, index: int) -> TFLiteOperator | None:
        """The operator writing tensor ``index``, or ``None`` (graph input or stored constant)."""
        return self._producers().get(index)

    def constant(self, index: int) -> np.ndarray | None:
        """Value of tensor ``index`` as float32 if it is a constant, else ``None``.

        Follows ``DEQUANTIZE`` and ``DENSIFY`` back to the stored data, so an operator's weight
        input is found whichever way the file packs it.

        Raises:
            BadInputError: the constant is integer-quantized (unsupported).
        """
        tensor = self.tensors[index]
        if tensor.data is not None:
            if tensor.quantized:
                raise BadInputError(self.path, f"{tensor.name}: quantized weights unsupported")
            return tensor.data.astype(np.float32)
        op = self.producer(index)
        if op is not None and op.opcode in CONSTANT_UNPACKING_OPS:
            return self.constant(op.inputs[0])
        return None

    def compute_operators(self) -> list[TFLiteOperator]:
        """The operators that compute on activations (constant unpacking left out)."""
        return [op for op in self.operators if op.opcode not in CONSTANT_UNPACKING_OPS]

    def op_counts(self) -> dict[str, int]:
        """How many operators of each type the graph has, most frequent first."""
        return dict(Counter(op.opcode for op in self.operators).most_common())

    def _producers(self) -> dict[int, TFLiteOperator]:
        cached: dict[int, TFLiteOperator] | None = self.__dict__.get("_producer_cache")
        if cached is None:
            cached = {out: op for op in self.operators for out in op.outputs}
            object.__setattr__(self, "_producer_cache", cached)
        return cached


def _import_tflite() -> Any:
    try:
        import tflite
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise NotAvailableError(
            "reading a .tflite file needs the 'tflite' package: pip install tflite"
        ) from exc
    return tflite


def _snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


@cache
def _option_fields(cls: type) -> tuple[str, ...]:
    """Accessor names of a generated flatbuffer options class (no Init, GetRootAs, ...)."""
    return tuple(
        attr
        for attr in dir(cls)
        if attr[:1].isupper()
        and not attr.startswith(("Init", "GetRootAs"))
        and not attr.endswith(("IsNone", "Length", "BufferHasIdentifier"))
    )


def _read_options(tflite: Any, op: Any) -> dict[str, Any]:
    """Builtin options of ``op`` as ``{snake_case_field: value}`` (scalars and int arrays)."""
    table = op.BuiltinOptions()
    if table is None:
        return {}
    type_names = {v: k for k, v in vars(tflite.BuiltinOptions).items() if not k.startswith("_")}
    cls = getattr(tflite, type_names.get(op.BuiltinOptionsType(), ""), None)
    if cls is None:
        return {}
    options = cls()
    options.Init(table.Bytes, table.Pos)
    values: dict[str, Any] = {}
    for attr in _option_fields(cls):
        method = getattr(options, attr)
        try:
            value = method()
        except TypeError:  # element accessors take an index; their *AsNumpy twin is read
            continue
        if isinstance(value, np.ndarray):
            value = value.tolist()
        name = _snake_case(attr[: -len("AsNumpy")] if attr.endswith("AsNumpy") else attr)
        values[name] = value
    return values


def _index_vector(tflite: Any, kind: int, table: Any) -> np.ndarray:
    """A ``SparseIndexVector`` union member as an int64 array."""
    classes = {1: tflite.Int32Vector, 2: tflite.Uint16Vector, 3: tflite.Uint8Vector}
    if kind not in classes or table is None:
        return np.zeros(0, np.int64)
    vector = classes[kind]()
    vector.Init(table.Bytes, table.Pos)
    values = vector.ValuesAsNumpy()
    return np.asarray(values if isinstance(values, np.ndarray) else [], dtype=np.int64)


def densify(
    values: np.ndarray,
    shape: tuple[int, ...],
    traversal_order: list[int],
    block_map: list[int],
    dim_metadata: list[tuple[int, int, np.ndarray, np.ndarray]],
) -> np.ndarray:
    """Dense array from TFLite's sparse storage (what the ``DENSIFY`` op computes).

    The stored values are visited in ``traversal_order`` over the original dimensions followed
    by the block dimensions; each visited level is dense (all ``dense_size`` positions) or CSR
    (``segments`` / ``indices`` select the non-zero positions), as in TFLite's
    ``FormatConverter``.

    Args:
        values: (nnz,) stored values, in traversal order.
        shape: dense shape of the tensor.
        traversal_order: order of the ``len(shape) + len(block_map)`` levels.
        block_map: for each block dimension, the original dimension it blocks.
        dim_metadata: per level (in traversal order) ``(format, dense_size, segments,
            indices)``; format 0 = dense, 1 = CSR.

    Returns:
        Array of ``shape`` and the dtype of ``values`` (zeros where nothing is stored).

    Raises:
        ValueError: the metadata does not describe ``values`` exactly.
    """
    rank = len(shape)
    levels = len(traversal_order)
    if len(dim_metadata) != levels or levels != rank + len(block_map):
        raise ValueError("sparsity metadata does not match the tensor rank")
    # Block sizes are the dense sizes of the block levels.
    block_sizes = [0] * len(block_map)
    for level, dim in enumerate(traversal_order):
        if dim >= rank:
            block_sizes[dim - rank] = dim_metadata[level][1]
    # Expand level by level: each visited entry has a position ``prev`` at its level (what CSR
    # segments index) and its coordinates so far; order is preserved, as in the traversal.
    prev = np.zeros(1, dtype=np.int64)
    coords = np.zeros((1, 0), dtype=np.int64)
    for fmt, size, segments, indices in dim_metadata:
        if fmt == _DIM_DENSE:
            prev = (prev[:, None] * size + np.arange(size)).reshape(-1)
            coords = np.column_stack(
                [np.repeat(coords, size, axis=0), np.tile(np.arange(size), len(coords))]
            )
        else:
            segments = np.asarray(segments, np.int64)
            if len(segments) and prev.max(initial=0) + 1 >= len(segments):
                raise ValueError("CSR segments too short for the sparse tensor")
            starts, counts = segments[prev], segments[prev + 1] - segments[prev]
            if np.any(counts < 0):
                raise ValueError("CSR segments are not increasing")
            owner = np.repeat(np.arange(len(prev)), counts)
            prev = np.repeat(starts, counts) + (
                np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
            )
            if prev.size and prev.max() >= len(indices):
                raise ValueError("CSR indices too short for the sparse tensor")
            coords = np.column_stack([coords[owner], np.asarray(indices, np.int64)[prev]])
    if len(coords) != len(values):
        raise ValueError(
            f"sparse tensor stores {len(values)} values, metadata visits {len(coords)}"
        )
    index = np.zeros((len(coords), rank), dtype=np.int64)
    for level, dim in enumerate(traversal_order[:rank]):
        index[:, dim] = coords[:, level]
    for level in range(rank, levels):
        block = traversal_order[level] - rank
        dim = block_map[block]
        index[:, dim] = index[:, dim] * block_sizes[block] + coords[:, level]
    dense = np.zeros(shape, dtype=values.dtype)
    dense[tuple(index.T)] = values
    return dense


def _read_sparse(
    tflite: Any, tensor: Any, values: np.ndarray, shape: tuple[int, ...]
) -> np.ndarray:
    sparsity = tensor.Sparsity()
    order = sparsity.TraversalOrderAsNumpy()
    block_map = sparsity.BlockMapAsNumpy()
    metadata = []
    for level in range(sparsity.DimMetadataLength()):
        dm = sparsity.DimMetadata(level)
        segments = _index_vector(tflite, dm.ArraySegmentsType(), dm.ArraySegments())
        indices = _index_vector(tflite, dm.ArrayIndicesType(), dm.ArrayIndices())
        metadata.append((int(dm.Format()), int(dm.DenseSize()), segments, indices))
    return densify(
        values,
        shape,
        [int(v) for v in (order if isinstance(order, np.ndarray) else [])],
        [int(v) for v in (block_map if isinstance(block_map, np.ndarray) else [])],
        metadata,
    )


def _opcode_name(tflite: Any, model: Any, op: Any) -> str:
    code = model.OperatorCodes(op.OpcodeIndex())
    # Schema >= 2.4 stores codes > 127 in builtin_code; deprecated_builtin_code holds the rest.
    builtin = max(int(code.BuiltinCode()), int(code.DeprecatedBuiltinCode()))
    if builtin == tflite.BuiltinOperator.CUSTOM:
        return f"CUSTOM:{(code.CustomCode() or b'').decode()}"
    return str(tflite.BUILTIN_OPCODE2NAME.get(builtin, f"BUILTIN_{builtin}"))


def read_tflite(path: str | Path) -> TFLiteGraph:
    """Read a single-subgraph TFLite model: operators, tensors and constant values.

    Args:
        path: the ``.tflite`` file.

    Returns:
        The graph; constants are dense numpy arrays in their stored dtype.

    Raises:
        BadInputError: not a TFLite file, several subgraphs, or an unreadable flatbuffer.
        NotAvailableError: the ``tflite`` package (flatbuffer schema) is not installed.

    Example:
        >>> graph = read_tflite("face_detection_short_range.tflite")  # doctest: +SKIP
        >>> graph.op_counts()["CONV_2D"]  # doctest: +SKIP
        21
    """
    tflite = _import_tflite()
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInputError(path, f"cannot read ({exc.strerror or exc})") from None
    if data[4:8] != b"TFL3":
        raise BadInputError(path, "not a TFLite file (no TFL3 identifier)")
    try:
        model = tflite.Model.GetRootAsModel(data, 0)
        if model.SubgraphsLength() != 1:
            raise BadInputError(path, "expected a TFLite model with one subgraph")
        graph = model.Subgraphs(0)
        tensors = []
        for i in range(graph.TensorsLength()):
            tensor = graph.Tensors(i)
            shape = tuple(int(s) for s in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
            dtype = _NUMPY_DTYPES.get(tensor.Type())
            buffer = model.Buffers(tensor.Buffer())
            quant = tensor.Quantization()
            quantized = quant is not None and quant.ScaleLength() > 0
            value = None
            sparse = tensor.Sparsity() is not None
            if dtype is not None and buffer is not None and buffer.DataLength() > 0:
                raw = np.frombuffer(buffer.DataAsNumpy().tobytes(), dtype=dtype)
                value = _read_sparse(tflite, tensor, raw, shape) if sparse else raw.reshape(shape)
            tensors.append(
                TFLiteTensor(
                    index=i,
                    name=tensor.Name().decode(),
                    shape=shape,
                    dtype=np.dtype(dtype).name if dtype else f"tflite_type_{tensor.Type()}",
                    data=value,
                    sparse=sparse,
                    quantized=quantized,
                )
            )
        operators = []
        for i in range(graph.OperatorsLength()):
            op = graph.Operators(i)
            operators.append(
                TFLiteOperator(
                    index=i,
                    opcode=_opcode_name(tflite, model, op),
                    inputs=tuple(int(j) for j in op.InputsAsNumpy()),
                    outputs=tuple(int(j) for j in op.OutputsAsNumpy()),
                    options=_read_options(tflite, op),
                )
            )
        return TFLiteGraph(
            path=path,
            tensors=tuple(tensors),
            operators=tuple(operators),
            inputs=tuple(int(j) for j in graph.InputsAsNumpy()),
            outputs=tuple(int(j) for j in graph.OutputsAsNumpy()),
            description=(model.Description() or b"").decode(errors="replace"),
        )
    except BadInputError:
        raise
    except Exception as exc:  # a corrupt flatbuffer fails in many ways
        raise BadInputError(path, f"unreadable TFLite flatbuffer ({exc})") from exc


def read_tflite_constants(path: str | Path) -> dict[str, np.ndarray]:
    """Float constants stored in a TFLite file, by tensor name, as float32 in TFLite layout.

    Only tensors backed by a buffer are returned (the inputs of ``DEQUANTIZE`` / ``DENSIFY``,
    densified), not integer constants such as ``PAD`` paddings or reshape shapes.

    Args:
        path: the ``.tflite`` file.

    Returns:
        ``{name: array}``, float32, shapes as stored (e.g. OHWI conv kernels).

    Raises:
        BadInputError: not a readable single-subgraph TFLite file.
        NotAvailableError: the ``tflite`` package is not installed.
    """
    graph = read_tflite(path)
    return {
        t.name: t.data.astype(np.float32)
        for t in graph.tensors
        if t.data is not None and t.dtype in ("float32", "float16")
    }


def tflite_kernel_to_torch(kernel: np.ndarray, depthwise: bool) -> np.ndarray:
    """Re-lay a TFLite conv kernel for PyTorch.

    Args:
        kernel: (O, kH, kW, I) ``CONV_2D`` kernel, or (1, kH, kW, C) ``DEPTHWISE_CONV_2D``
            kernel (depth multiplier 1).
        depthwise: which of the two it is.

    Returns:
        (O, I, kH, kW), or (C, 1, kH, kW) for a depthwise kernel; contiguous.
    """
    order = (3, 0, 1, 2) if depthwise else (0, 3, 1, 2)
    return np.ascontiguousarray(kernel.transpose(order))
