"""Tests of the TFLite reader of the conversion tools (``tools/tflite_reader.py``).

A tiny model is written with the flatbuffer builders of the ``tflite`` package (fp16 sparse
weights -> DENSIFY -> DEQUANTIZE -> CONV_2D), so reading is tested without MediaPipe's files;
MediaPipe's face detection models are read too when found (``MVFACE_BLAZEFACE_SHORT_TFLITE`` /
``MVFACE_BLAZEFACE_FULL_TFLITE`` or an installed wheel).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from _scripts import load_tool
from mvface.errors import BadInputError

_reader = load_tool("tflite_reader")
densify = _reader.densify
read_tflite = _reader.read_tflite
read_tflite_constants = _reader.read_tflite_constants
tflite_kernel_to_torch = _reader.tflite_kernel_to_torch

#: The tiny model's sparse weight: a 2 x 3 matrix, CSR over rows.
SPARSE_DENSE = np.array([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]], np.float16)


# --------------------------------------------------------------------------------------------
# A tiny TFLite file
# --------------------------------------------------------------------------------------------


def _schema(name: str) -> Any:
    return importlib.import_module(f"tflite.{name}")


def _int_vector(builder: Any, values: list[int]) -> int:
    return int(builder.CreateNumpyVector(np.asarray(values, np.int32)))


def _table_vector(builder: Any, offsets: list[int]) -> int:
    builder.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        builder.PrependUOffsetTRelative(offset)
    return int(builder.EndVector())


def write_tiny_tflite(path: Path) -> Path:
    """Write a 1-subgraph TFLite model: input (1, 4, 4, 3); a sparse fp16 (2, 3) constant,
    DENSIFY -> DEQUANTIZE; a CONV_2D (stride 2, VALID, fused ReLU) using it with an fp32 bias.

    Tensors: 0 input, 1 sparse fp16 weight (buffer 1), 2 densified fp16, 3 fp32 weight,
    4 fp32 bias (buffer 2), 5 output.
    """
    import flatbuffers
    import tflite

    b = flatbuffers.Builder(1024)
    # Buffers: 0 empty (TFLite convention), 1 sparse values (fp16), 2 bias (fp32).
    data = [
        np.zeros(0, np.uint8),
        np.array([1.0, 2.0, 3.0], np.float16).view(np.uint8),
        np.array([0.5, -0.5], np.float32).view(np.uint8),
    ]
    buffers = []
    for raw in data:
        vector = b.CreateNumpyVector(raw) if raw.size else None
        _schema("Buffer").BufferStart(b)
        if vector is not None:
            _schema("Buffer").BufferAddData(b, vector)
        buffers.append(b.EndObject())

    # Sparsity of tensor 1: row dimension dense (2), column dimension CSR.
    dm = _schema("DimensionMetadata")
    segments_table = []
    for values in ([0, 2, 3], [0, 2, 2]):
        vec = _int_vector(b, values)
        _schema("Int32Vector").Int32VectorStart(b)
        _schema("Int32Vector").Int32VectorAddValues(b, vec)
        segments_table.append(b.EndObject())
    dm.DimensionMetadataStart(b)
    dm.DimensionMetadataAddFormat(b, 0)
    dm.DimensionMetadataAddDenseSize(b, 2)
    dense_dim = b.EndObject()
    dm.DimensionMetadataStart(b)
    dm.DimensionMetadataAddFormat(b, 1)
    dm.DimensionMetadataAddArraySegmentsType(b, tflite.SparseIndexVector.Int32Vector)
    dm.DimensionMetadataAddArraySegments(b, segments_table[0])
    dm.DimensionMetadataAddArrayIndicesType(b, tflite.SparseIndexVector.Int32Vector)
    dm.DimensionMetadataAddArrayIndices(b, segments_table[1])
    sparse_dim = b.EndObject()
    order = _int_vector(b, [0, 1])
    metadata = _table_vector(b, [dense_dim, sparse_dim])
    sp = _schema("SparsityParameters")
    sp.SparsityParametersStart(b)
    sp.SparsityParametersAddTraversalOrder(b, order)
    sp.SparsityParametersAddDimMetadata(b, metadata)
    sparsity = b.EndObject()

    specs = [  # name, shape, type (0 float32, 1 float16), buffer, sparse
        ("input", [1, 4, 4, 3], 0, 0, False),
        ("weight_sparse", [2, 3], 1, 1, True),
        ("weight_fp16", [2, 3], 1, 0, False),
        ("weight", [2, 3], 0, 0, False),
        ("bias", [2], 0, 2, False),
        ("output", [1, 2, 2, 2], 0, 0, False),
    ]
    tensors = []
    for name, shape, dtype, buffer, sparse in specs:
        name_offset = b.CreateString(name)
        shape_offset = _int_vector(b, shape)
        t = _schema("Tensor")
        t.TensorStart(b)
        t.TensorAddName(b, name_offset)
        t.TensorAddShape(b, shape_offset)
        t.TensorAddType(b, dtype)
        t.TensorAddBuffer(b, buffer)
        if sparse:
            t.TensorAddSparsity(b, sparsity)
        tensors.append(t.TensorEnd(b))

    c = _schema("Conv2DOptions")
    c.Conv2DOptionsStart(b)
    c.Conv2DOptionsAddPadding(b, tflite.Padding.VALID)
    c.Conv2DOptionsAddStrideW(b, 2)
    c.Conv2DOptionsAddStrideH(b, 2)
    c.Conv2DOptionsAddFusedActivationFunction(b, tflite.ActivationFunctionType.RELU)
    conv_options = c.Conv2DOptionsEnd(b)

    codes = [tflite.BuiltinOperator.DENSIFY, tflite.BuiltinOperator.DEQUANTIZE]
    codes.append(tflite.BuiltinOperator.CONV_2D)
    code_offsets = []
    for code in codes:
        oc = _schema("OperatorCode")
        oc.OperatorCodeStart(b)
        oc.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
        oc.OperatorCodeAddBuiltinCode(b, code)
        oc.OperatorCodeAddVersion(b, 1)
        code_offsets.append(oc.OperatorCodeEnd(b))

    operators = []
    for opcode, inputs, outputs in ((0, [1], [2]), (1, [2], [3]), (2, [0, 3, 4], [5])):
        ins, outs = _int_vector(b, inputs), _int_vector(b, outputs)
        o = _schema("Operator")
        o.OperatorStart(b)
        o.OperatorAddOpcodeIndex(b, opcode)
        o.OperatorAddInputs(b, ins)
        o.OperatorAddOutputs(b, outs)
        if opcode == 2:
            o.OperatorAddBuiltinOptionsType(b, tflite.BuiltinOptions.Conv2DOptions)
            o.OperatorAddBuiltinOptions(b, conv_options)
        operators.append(o.OperatorEnd(b))

    tensor_vec, op_vec = _table_vector(b, tensors), _table_vector(b, operators)
    inputs, outputs = _int_vector(b, [0]), _int_vector(b, [5])
    sg = _schema("SubGraph")
    sg.SubGraphStart(b)
    sg.SubGraphAddTensors(b, tensor_vec)
    sg.SubGraphAddInputs(b, inputs)
    sg.SubGraphAddOutputs(b, outputs)
    sg.SubGraphAddOperators(b, op_vec)
    subgraph = sg.SubGraphEnd(b)

    subgraphs, code_vec = _table_vector(b, [subgraph]), _table_vector(b, code_offsets)
    buffer_vec = _table_vector(b, buffers)
    description = b.CreateString("tiny test model")
    m = _schema("Model")
    m.ModelStart(b)
    m.ModelAddVersion(b, 3)
    m.ModelAddOperatorCodes(b, code_vec)
    m.ModelAddSubgraphs(b, subgraphs)
    m.ModelAddDescription(b, description)
    m.ModelAddBuffers(b, buffer_vec)
    b.Finish(m.ModelEnd(b), file_identifier=b"TFL3")
    path.write_bytes(bytes(b.Output()))
    return path


@pytest.fixture()
def tiny(tmp_path: Path) -> Path:
    pytest.importorskip("tflite")
    return write_tiny_tflite(tmp_path / "tiny.tflite")


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


class TestReadTflite:
    def test_graph(self, tiny: Path) -> None:
        graph = read_tflite(tiny)
        assert graph.description == "tiny test model"
        assert [op.opcode for op in graph.operators] == ["DENSIFY", "DEQUANTIZE", "CONV_2D"]
        assert graph.inputs == (0,) and graph.outputs == (5,)
        assert graph.op_counts() == {"DENSIFY": 1, "DEQUANTIZE": 1, "CONV_2D": 1}
        assert [op.opcode for op in graph.compute_operators()] == ["CONV_2D"]
        assert graph.tensor("bias").shape == (2,)
        with pytest.raises(BadInputError, match="no tensor"):
            graph.tensor("absent")

    def test_options(self, tiny: Path) -> None:
        conv = read_tflite(tiny).compute_operators()[0]
        assert conv.options["stride_h"] == 2 and conv.options["stride_w"] == 2
        assert conv.options["padding"] == 1  # VALID
        assert conv.options["fused_activation_function"] == 1  # RELU

    def test_sparse_constant_is_densified(self, tiny: Path) -> None:
        graph = read_tflite(tiny)
        stored = graph.tensor("weight_sparse")
        assert stored.sparse and stored.dtype == "float16"
        assert stored.data is not None
        np.testing.assert_array_equal(stored.data, SPARSE_DENSE)

    def test_constant_follows_unpacking_ops(self, tiny: Path) -> None:
        graph = read_tflite(tiny)
        conv = graph.compute_operators()[0]
        weight = graph.constant(conv.inputs[1])  # DEQUANTIZE(DENSIFY(sparse fp16))
        assert weight is not None and weight.dtype == np.float32
        np.testing.assert_array_equal(weight, SPARSE_DENSE.astype(np.float32))
        np.testing.assert_array_equal(graph.constant(conv.inputs[2]), [0.5, -0.5])
        assert graph.constant(conv.inputs[0]) is None  # an activation
        assert graph.producer(conv.inputs[1]) is graph.operators[1]

    def test_read_constants(self, tiny: Path) -> None:
        constants = read_tflite_constants(tiny)
        assert set(constants) == {"weight_sparse", "bias"}
        np.testing.assert_array_equal(constants["weight_sparse"], SPARSE_DENSE)

    def test_rejects_non_tflite(self, tmp_path: Path) -> None:
        pytest.importorskip("tflite")
        bad = tmp_path / "bad.tflite"
        bad.write_bytes(b"not a flatbuffer at all")
        with pytest.raises(BadInputError, match=r"bad\.tflite.*TFL3"):
            read_tflite(bad)

    def test_rejects_truncated(self, tiny: Path) -> None:
        truncated = tiny.with_name("truncated.tflite")
        truncated.write_bytes(tiny.read_bytes()[:64])
        with pytest.raises(BadInputError, match="truncated"):
            read_tflite(truncated)

    def test_missing_file(self, tmp_path: Path) -> None:
        pytest.importorskip("tflite")
        with pytest.raises(BadInputError, match="cannot read"):
            read_tflite(tmp_path / "absent.tflite")


class TestMediaPipeFiles:
    def _find(self, variant: str) -> Path:
        pytest.importorskip("tflite")
        path = load_tool("convert_blazeface").find_blazeface_tflite(variant)
        if path is None:
            pytest.skip(f"MediaPipe face detection {variant} .tflite not found")
        return path

    def test_short_range_ops(self) -> None:
        graph = read_tflite(self._find("short"))
        counts = graph.op_counts()
        assert counts["CONV_2D"] == 21 and counts["DEPTHWISE_CONV_2D"] == 16
        stem = graph.compute_operators()[0]
        assert stem.opcode == "CONV_2D"
        assert stem.options["stride_h"] == 2 and stem.options["padding"] == 0  # SAME
        kernel = graph.constant(stem.inputs[1])
        assert kernel is not None and kernel.shape == (24, 5, 5, 3)

    def test_full_range_sparse_weights(self) -> None:
        graph = read_tflite(self._find("full"))
        sparse = [t for t in graph.tensors if t.sparse]
        assert len(sparse) == graph.op_counts()["DENSIFY"] == 46
        zeros = np.mean([np.mean(t.data == 0) for t in sparse if t.data is not None])
        assert 0.5 < zeros < 0.9  # pruned


# --------------------------------------------------------------------------------------------
# densify
# --------------------------------------------------------------------------------------------


def _dims(*levels: tuple[int, int, list[int], list[int]]) -> list[Any]:
    return [(f, n, np.array(s, np.int64), np.array(i, np.int64)) for f, n, s, i in levels]


class TestDensify:
    def test_csr_rows(self) -> None:
        dense = densify(
            np.array([1.0, 2.0, 3.0]),
            (2, 3),
            [0, 1],
            [],
            _dims((0, 2, [], []), (1, 0, [0, 2, 3], [0, 2, 2])),
        )
        np.testing.assert_array_equal(dense, [[1, 0, 2], [0, 0, 3]])

    def test_block_sparse(self) -> None:
        # 4 x 4 with 2 x 2 blocks on the diagonal; block rows dense, block columns CSR.
        expected = np.array([[1, 2, 0, 0], [3, 4, 0, 0], [0, 0, 5, 6], [0, 0, 7, 8]], float)
        dense = densify(
            np.arange(1.0, 9.0),
            (4, 4),
            [0, 1, 2, 3],
            [0, 1],
            _dims((0, 2, [], []), (1, 0, [0, 1, 2], [0, 1]), (0, 2, [], []), (0, 2, [], [])),
        )
        np.testing.assert_array_equal(dense, expected)

    def test_traversal_order(self) -> None:
        # Column-major traversal of a dense 2 x 3 array.
        dense = densify(np.arange(6.0), (2, 3), [1, 0], [], _dims((0, 3, [], []), (0, 2, [], [])))
        np.testing.assert_array_equal(dense, np.arange(6.0).reshape(3, 2).T)

    def test_value_count_mismatch(self) -> None:
        with pytest.raises(ValueError, match="stores 2 values"):
            densify(
                np.array([1.0, 2.0]),
                (2, 3),
                [0, 1],
                [],
                _dims((0, 2, [], []), (1, 0, [0, 2, 3], [0, 2, 2])),
            )

    def test_rank_mismatch(self) -> None:
        with pytest.raises(ValueError, match="rank"):
            densify(np.zeros(1), (2, 3), [0], [], _dims((0, 2, [], [])))


# --------------------------------------------------------------------------------------------
# Kernel layout
# --------------------------------------------------------------------------------------------


class TestKernelLayout:
    def test_kernel_layout(self) -> None:
        conv = np.arange(2 * 3 * 3 * 4).reshape(2, 3, 3, 4)  # OHWI
        assert tflite_kernel_to_torch(conv, depthwise=False).shape == (2, 4, 3, 3)
        depthwise = np.arange(3 * 3 * 8).reshape(1, 3, 3, 8)  # 1HWC
        out = tflite_kernel_to_torch(depthwise, depthwise=True)
        assert out.shape == (8, 1, 3, 3) and out[5, 0, 1, 2] == depthwise[0, 1, 2, 5]
