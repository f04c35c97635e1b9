"""The int8 graph stores its word-embedding table as int8 with a scale per row (onnx_build/embedding_int8.py):
smaller, the manifest says so, and the lookup gives the table's rows to within half a step."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

from distilbert_onnx.manifest import read_manifest
from distilbert_onnx.onnx_build.embedding_int8 import store_word_embeddings_int8


@pytest.mark.parametrize("task", ["text-classification", "fill-mask"])
def test_exported_int8_graph_has_an_int8_table(exported, task):
    folder = exported[task]
    model = onnx.load(str(folder / "model_quantized.onnx"))
    types = {init.name: init.data_type for init in model.graph.initializer}
    table = next(name for name in types if name.endswith("word_embeddings.weight_int8"))
    assert types[table] == onnx.TensorProto.INT8
    assert table.removesuffix("_int8") not in types  # the fp32 table is gone
    record = read_manifest(folder).data["variants"]["quantized"]
    assert record["quantization"]["word_embeddings"] == "int8 symmetric, one scale per row"


def _lookup_graph(table: np.ndarray, shared: bool = False):
    nodes = [helper.make_node("Gather", ["table", "input_ids"], ["rows"], name="lookup")]
    outputs = [helper.make_tensor_value_info("rows", onnx.TensorProto.FLOAT, None)]
    if shared:  # another reader of the table, as a tied language-model head would be
        nodes.append(helper.make_node("Identity", ["table"], ["copy"]))
        outputs.append(helper.make_tensor_value_info("copy", onnx.TensorProto.FLOAT, None))
    graph = helper.make_graph(nodes, "lookup", [helper.make_tensor_value_info("input_ids", onnx.TensorProto.INT64, [None, None])],
                              outputs, [numpy_helper.from_array(table, "table")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_lookup_is_within_half_a_step_of_each_row():
    table = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32)
    table[3] = 0.0  # a row of zeros keeps a usable scale
    model = _lookup_graph(table)
    assert store_word_embeddings_int8(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    ids = np.array([[0, 3, 49, 7]], dtype=np.int64)
    rows = session.run(None, {"input_ids": ids})[0]
    step = np.abs(table[ids[0]]).max(axis=1, keepdims=True) / 127
    assert rows.shape == (1, 4, 8)
    assert np.all(np.abs(rows[0] - table[ids[0]]) <= step / 2 + 1e-7)
    assert np.all(rows[0, 1] == 0.0)


def test_a_table_read_elsewhere_is_left_alone():
    model = _lookup_graph(np.ones((5, 2), dtype=np.float32), shared=True)
    assert not store_word_embeddings_int8(model)
    assert [init.name for init in model.graph.initializer] == ["table"]
