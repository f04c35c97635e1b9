"""The word-embedding table of an int8 graph stored as int8, one scale per row.

onnxruntime's dynamic quantizer leaves Gather inputs in fp32 (its Gather quantization is per tensor,
uint8, through an activation quantizer), so the table, about half of distilbert-base's weights, kept
the int8 file at twice the size of Optimum's. Here the table that `input_ids` indexes becomes int8
with a symmetric scale per row (per token), and the lookup becomes

    Gather(table_int8, ids) -> Cast to float -> Mul by Gather(row_scales, ids)

so only the looked-up rows are dequantized, never the whole table. In a fused graph the lookup is
part of EmbedLayerNormalization, which needs an fp32 table; it is written out as plain ops around
the int8 lookup (the only change to the fused graph). A table that another node also
reads (a language-model head tied to the embeddings, where the quantizer has not replaced it) is left
as it is. The rounding error per value is at most half a step of its row's scale (bench/README.md
gives the fidelity and speed before and after).
"""

from __future__ import annotations

import numpy as np

INPUT_IDS = ("input_ids", "input_ids_int32")  # the fused graph casts input_ids to int32 for its fused ops
FUSED = "EmbedLayerNormalization"


def store_word_embeddings_int8(model) -> bool:
    """Rewrite `model` (an onnx ModelProto) in place; True when the table was stored as int8.

    In a fused graph the lookup is part of EmbedLayerNormalization, which takes an fp32 table: it is
    written out as the lookup above, the position embeddings' Gather, an Add and LayerNormalization.
    """
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    lookups = [node for node in graph.node if _word_lookup(node, initializers, graph)]
    if len(lookups) != 1:
        return False
    lookup = lookups[0]
    table_name, ids = (lookup.input[2], lookup.input[0]) if lookup.op_type == FUSED else (lookup.input[0], lookup.input[1])
    if any(table_name in node.input for node in graph.node if node is not lookup):
        return False
    table = numpy_helper.to_array(initializers[table_name])
    if table.ndim != 2 or table.dtype != np.float32:
        return False
    peak = np.abs(table).max(axis=1, keepdims=True)
    scales = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    quantized = np.clip(np.rint(table / scales), -127, 127).astype(np.int8)
    graph.initializer.remove(initializers[table_name])
    graph.initializer.extend([numpy_helper.from_array(quantized, table_name + "_int8"),
                              numpy_helper.from_array(scales, table_name + "_row_scale")])
    prefix = lookup.name or table_name
    rows = lookup.output[0] if lookup.op_type == "Gather" else prefix + "_word_rows"
    nodes = [
        helper.make_node("Gather", [table_name + "_int8", ids], [rows + "_int8"], name=prefix + "_int8"),
        helper.make_node("Cast", [rows + "_int8"], [rows + "_unscaled"], name=prefix + "_cast", to=TensorProto.FLOAT),
        helper.make_node("Gather", [table_name + "_row_scale", ids], [rows + "_scale"], name=prefix + "_scale"),
        helper.make_node("Mul", [rows + "_unscaled", rows + "_scale"], [rows], name=prefix + "_dequantize"),
    ]
    if lookup.op_type == FUSED:
        positions, position_ids, gamma, beta = lookup.input[3], lookup.input[8], lookup.input[5], lookup.input[6]
        epsilon = next((a.f for a in lookup.attribute if a.name == "epsilon"), 1e-12)
        nodes += [
            helper.make_node("Gather", [positions, position_ids], [prefix + "_position_rows"], name=prefix + "_positions"),
            helper.make_node("Add", [rows, prefix + "_position_rows"], [prefix + "_sum"], name=prefix + "_add"),
            helper.make_node("LayerNormalization", [prefix + "_sum", gamma, beta], [lookup.output[0]], name=prefix + "_layer_norm",
                             axis=-1, epsilon=epsilon),
        ]
    position = list(graph.node).index(lookup)
    graph.node.remove(lookup)
    for offset, node in enumerate(nodes):
        graph.node.insert(position + offset, node)
    return True


def _word_lookup(node, initializers: dict, graph) -> bool:
    """Whether `node` looks up the word-embedding table by the token ids (plain or fused)."""
    if node.op_type == "Gather":
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        return len(node.input) == 2 and node.input[1] in INPUT_IDS and node.input[0] in initializers and axis == 0
    if node.op_type != FUSED or node.input[0] not in INPUT_IDS or node.input[2] not in initializers:
        return False
    # Only the form DistilBERT's fusion makes: no segment embeddings or mask, given position ids, the
    # mask-index output unused.
    inputs = list(node.input) + [""] * (9 - len(node.input))
    mask_index_used = len(node.output) > 1 and any(node.output[1] in other.input for other in graph.node)
    return inputs[1] == inputs[4] == inputs[7] == "" and inputs[8] != "" and inputs[3] in initializers and not mask_index_used
