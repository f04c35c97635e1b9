"""Fuse an exported DistilBERT graph with onnxruntime's transformer optimizer.

One Attention op per layer, two SkipLayerNormalization per layer, one BiasGelu per GELU, and the
embedding sum + layer norm as EmbedLayerNormalization (or the optimizer's reason why not, recorded).
Attention takes the raw 2-D attention mask: the optimizer's default mask-index format assumes right
padding and gives wrong results on left-padded batches. A fusion that falls short is an error,
never a quietly slower graph. The fused graph is validated like model.onnx (right- and left-padded
probes) and its fused-op counts go into the manifest.

The variants made only on request (the table's opt-in rows, e.g. fp16) are made after the fused
graph by their rows' builders, each given the step's FusedStep. fp16_graph writes
model_optimized_fp16.onnx: the fused graph with float16 weights and compute, float32 outputs, and the
GPU's tanh-approximated GELU (FastGelu). It is validated on CUDA when a GPU is available; otherwise it
is marked unvalidated, and checked on the CPU provider instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..artifacts import staged_file
from ..checks.fp16 import validate_fp16
from ..checks.probes import Runner, check, make_probes
from ..config import DistilBertConfig, load_config
from ..errors import FusionError
from ..manifest import require_manifest, update_manifest, variant_record
from ..options import ATOL
from ..progress import Stages
from ..runtime.session import OnnxModel
from ..tasks import TaskSpec, get_task
from ..variants import FP16, FP32, OPTIMIZED, Variant, resolve
from .logs import captured_logs


@dataclass
class FusedStep:
    """What the optimize step hands the builder of an opt-in variant: the folder, model.onnx (`source`),
    the task and config, the reference and probes to validate against (named `against`), the stages."""

    folder: Path
    source: Path
    spec: TaskSpec
    config: DistilBertConfig
    reference: Runner
    probes: list
    against: str
    stages: Stages

    def make(self, variant: Variant, doing: str, write: Callable[[Path], dict], validating: str,
             validate: Callable[[Path], dict]) -> dict:
        """Write `variant`'s graph under a temporary name (`write(path)` returns its fused-op counts),
        validate it (`validate(path)` returns the validation figures), rename it into place and enter it
        into the manifest at once (a later step may fail); `doing` and `validating` name the stages.
        Returns its manifest record."""
        with staged_file(self.folder / variant.file) as tmp:
            with self.stages(doing):
                fused_ops = write(tmp)
            with self.stages(validating):
                validation = validate(tmp)
        record = variant_record(self.folder, variant, fused_ops=fused_ops, validation=validation)
        update_manifest(self.folder, {variant.name: record})
        return record


def optimize_folder(
    folder: str | Path,
    also: tuple[Variant, ...] = (),
    *,
    atol: float | None = None,
    reference: Runner | None = None,
    against: str = "model.onnx",
    stages: Stages | None = None,
) -> dict:
    """Add model_optimized.onnx (and the opt-in variants in `also`, e.g. variants.FP16) to an exported folder.

    Each graph is written under a temporary name, validated against `reference` (default: the
    folder's fp32 model.onnx, itself validated against PyTorch), then renamed into place and recorded
    in the manifest. Returns the new manifest entries. `atol` defaults to, and is checked as, options.ATOL.
    """
    folder = Path(folder)
    atol = ATOL.value(atol)
    stages = stages or Stages()
    manifest = require_manifest(folder)
    spec, config = get_task(manifest.task), load_config(folder)
    source = folder / FP32.file
    reference = reference or OnnxModel(source).run
    probes = make_probes(spec, config.vocab_size, config.pad_token_id)
    step = FusedStep(folder, source, spec, config, reference, probes, against, stages)
    records = {OPTIMIZED.name: step.make(
        OPTIMIZED, "fuse attention, layer norms and GELU", lambda tmp: fuse(source, tmp, spec, config),
        f"validate {OPTIMIZED.file} against {against}",
        lambda tmp: check(reference, OnnxModel(tmp).run, spec, probes, atol, OPTIMIZED.file, against))}
    for variant in also:
        records[variant.name] = resolve(variant.builder)(step)
    return records


def fp16_graph(step: FusedStep) -> dict:
    """The fp16 row's builder: model_optimized_fp16.onnx, fused for CUDA, validated (checks/fp16.py)."""
    return step.make(FP16, "fuse for CUDA and convert to float16",
                     lambda tmp: fuse(step.source, tmp, step.spec, step.config, fp16=True), f"validate {FP16.file}",
                     lambda tmp: validate_fp16(tmp, step.reference, step.spec, step.probes, step.against))


def fuse(source: Path, target: Path, spec: TaskSpec, config: DistilBertConfig, fp16: bool = False) -> dict:
    """Write the fused graph of `source` to `target`; returns the fused-op counts for the manifest."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    options.use_raw_attention_mask(True)
    options.enable_gelu_approximation = fp16
    # The optimizer's symbolic shape inference copies the whole model several times (4 s for
    # distilbert-base) and changes nothing here: the graph is validated after fusion instead.
    options.enable_shape_inference = False
    with captured_logs() as logs:
        model = optimize_model(
            str(source),
            model_type="bert",
            num_heads=config.n_heads,
            hidden_size=config.dim,
            optimization_options=options,
            opt_level=0,
            use_gpu=fp16,
        )
        counts = {op: count for op, count in model.get_fused_operator_statistics().items() if count}
        if fp16:
            model.convert_float_to_float16(keep_io_types=True)
        model.save_model_to_file(str(target))
    return _check_fusion(counts, spec, config, fp16, logs)


def expected_fusions(spec: TaskSpec, config: DistilBertConfig, fp16: bool = False) -> dict[str, int]:
    """The fused ops a DistilBERT graph must have: per layer one Attention, two SkipLayerNorms, one GELU."""
    expected = {"Attention": config.n_layers, "SkipLayerNormalization": 2 * config.n_layers}
    if config.activation == "gelu":
        expected["FastGelu" if fp16 else "BiasGelu"] = config.n_layers + spec.head_gelus
    return expected


def _check_fusion(counts: dict, spec: TaskSpec, config: DistilBertConfig, fp16: bool, logs: list[str]) -> dict:
    short = [
        f"{op} {counts.get(op, 0)} of {wanted}"
        for op, wanted in expected_fusions(spec, config, fp16).items()
        if counts.get(op, 0) < wanted
    ]
    if short:
        raise FusionError(
            f"onnxruntime's optimizer fused only part of the graph ({'; '.join(short)}): the fused graph would be "
            "slower than it should, so none was written; export with --no-optimize and report this"
        )
    result = {"counts": counts}
    if not counts.get("EmbedLayerNormalization"):
        reasons = [line for line in logs if "EmbedLayerNormalization" in line]
        result["embed_layer_norm_not_fused"] = reasons[0] if reasons else "the optimizer did not match the embedding subgraph"
    return result
