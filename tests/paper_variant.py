"""The issue's paper exercise made real: a new variant (an ONNX fp16 graph for CPUs with AVX512-FP16)
added as one row of the variant table plus its builder (and its check), nothing else.

Imported first by a child process (test_variant_table.py), before the package's CLI: the row is
entered into the table, then every command runs as usual and must find it through the table: the
opt-in flag of export / optimize, the optimize step calling its builder, `validate` calling its
check, auto leaving it out on CPUs without the flag its row names."""

from __future__ import annotations

from distilbert_onnx import variants

ROW = variants.Variant(
    "fp16-cpu", "model_optimized_fp16_cpu.onnx", "fp16", ("cpu",), f"{__name__}:build",
    "make it with: distilbert-onnx optimize DIR --fp16-cpu", f"{__name__}:checks",
    cpu_flags=("avx512_fp16",),
    opt_in=variants.OptIn("fp16_cpu", "--fp16-cpu", "Also write the fp16 graph for CPUs with AVX512-FP16."),
)
variants.VARIANTS[ROW.name] = ROW
variants.OPT_IN += (ROW,)
variants.CHECK_ORDER += (ROW,)
variants.CPU_CANDIDATES += (ROW,)


def build(step) -> dict:
    """The row's builder: the fused graph in float16, validated on the CPU provider."""
    from distilbert_onnx.checks.fp16 import FP16_ATOL
    from distilbert_onnx.checks.probes import check
    from distilbert_onnx.onnx_build.optimize import fuse
    from distilbert_onnx.runtime.session import OnnxModel

    return step.make(ROW, "fuse and convert to float16 for the CPU",
                     lambda tmp: fuse(step.source, tmp, step.spec, step.config, fp16=True), f"validate {ROW.file}",
                     lambda tmp: check(step.reference, OnnxModel(tmp).run, step.spec, step.probes, FP16_ATOL, ROW.file,
                                       step.against))


def checks(context) -> list:
    """The row's check for `validate`: against model.onnx on the probes, within the fp16 tolerance."""
    from distilbert_onnx.checks.context import summary
    from distilbert_onnx.checks.fp16 import FP16_ATOL
    from distilbert_onnx.checks.probes import check
    from distilbert_onnx.runtime.session import OnnxModel

    def run() -> str:
        return summary(check(context.reference, OnnxModel(context.folder / ROW.file).run, context.spec, context.probes,
                             FP16_ATOL, ROW.file, "model.onnx"))

    return [(ROW.file, f"validate {ROW.file} against model.onnx", run)]
