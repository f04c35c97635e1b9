"""How the CLI prints manifest entries: the variants table of `info` and `export`, and the one-line
summaries of fusion, validation and fidelity that `optimize`, `quantize` and `openvino` print."""

from __future__ import annotations

from ..manifest import Manifest, describe_fidelity


def variants_table(manifest: Manifest) -> str:
    """The manifest's variants, one block of lines each (info, export)."""
    lines = ["variants:"]
    for name, record in manifest.data["variants"].items():
        lines.append(f"  {name:<10} {record['file']:<27} {record['size_bytes'] / 1e6:8.1f} MB  {record['precision']}")
        if record.get("weights"):  # an OpenVINO IR: its own lines
            lines += [f"{'':13}{line}" for line in [f"+ {record['weights']['file']} (weights)", *ir_lines(record)]]
            continue
        if "fused_ops" in record:
            lines.append(f"             fused: {fused_summary(record)}")
        if "validation" in record:
            lines.append(f"             {validation_summary(record)}")
        if "fidelity" in record:
            lines.append(f"             fidelity to fp32: {describe_fidelity(record['fidelity'], full=True)}")
        if "quantization" in record:
            quantization = record["quantization"]
            lines.append(f"             from {quantization['source_graph']}, {quantization['weights']}, "
                         f"{len(quantization['kept_fp32'])} MatMul(s) kept in fp32")
    return "\n".join(lines)


def fused_summary(record: dict) -> str:
    """The fused-op counts of a fused graph's record."""
    fused = record["fused_ops"]
    text = ", ".join(f"{op} {count}" for op, count in fused["counts"].items())
    if "embed_layer_norm_not_fused" in fused:
        text += f" (embedding layer norm not fused: {fused['embed_layer_norm_not_fused']})"
    return text


def validation_summary(record: dict) -> str:
    """A record's validation figures (or why it is unvalidated) on one line."""
    validation = record["validation"]
    if validation.get("passed") is None:
        text = f"UNVALIDATED: {validation['reason']}"
        cpu_check = validation.get("cpu_check")
        if isinstance(cpu_check, dict):
            text += f" (on the CPU provider: max abs diff {max(cpu_check['max_abs_diff'].values()):.1e} <= {cpu_check['atol']:g})"
        return text
    worst = max(validation["max_abs_diff"].values())
    return (f"validated against {validation['reference']}: max abs diff {worst:.1e} <= atol {validation['atol']:g} "
            f"on {', '.join(validation['probes'])}")


def ir_lines(record: dict) -> list[str]:
    """What an OpenVINO variant's record says, one line per figure (openvino, info)."""
    lines = []
    if "validation" in record:
        lines.append(validation_summary(record))
    bf16 = record.get("bf16")
    if bf16 is not None:
        if bf16["fidelity"] is None:
            lines.append(f"bf16: {bf16['reason']}")
        else:
            verdict = "meets the target" if bf16["meets_target"] else "MISSES the target: runs in fp32"
            lines.append(f"bf16 fidelity to fp32: {describe_fidelity(bf16['fidelity'], full=True)}; {verdict} "
                         f"(measured on {bf16['measured_on']})")
    if "quantization" in record:
        quantization = record["quantization"]
        lines.append(f"fidelity to fp32: {describe_fidelity(record['fidelity'], full=True)}")
        target = quantization["target"]
        lines.append(f"NNCF {quantization['preset']} preset, {quantization['model_type']}; "
                     f"{len(quantization['kept_fp32'])} op(s) kept in fp32 "
                     f"({quantization['kept_fp32_compute_share']:.1%} of the compute) to meet mean cosine >= "
                     f"{target['min_cosine']}, worst >= {target['min_worst_cosine']}")
    return lines
