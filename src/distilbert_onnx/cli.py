"""The `distilbert-onnx` command: thin click commands over the package's functions.

Problems a user can fix (a bad path, an occupied folder, a graph that fails validation, bad input)
end as one `Error: ...` line and exit status 1, never a traceback. Progress goes to stderr; results
(predictions, benchmark tables, info) go to stdout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from . import __version__
from .errors import DistilbertOnnxError, ValidationError
from .tasks import TASK_CHOICES, TASK_NAMES


class Cli(click.Group):
    """A click group that turns this package's errors into one-line messages."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ValidationError as exc:
            details = "".join(f"\n  {line}" for line in exc.report)
            raise click.ClickException(f"{exc}{details}") from None
        except DistilbertOnnxError as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)


def _progress(message: str) -> None:
    click.echo(message, err=True)


@click.group(cls=Cli, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="distilbert-onnx")
def main() -> None:
    """Take DistilBERT checkpoints to validated, fused and quantized ONNX, and run them."""


# --- export / optimize / quantize / validate / info --------------------------------------------

_target_options = [
    click.option("--calibration-texts", type=click.Path(dir_okay=False), help="Text file, one text per line, to measure int8 fidelity on [default: built-in sample of varied English]."),
    click.option("--min-cosine", type=float, help="Target mean cosine of int8 outputs to fp32 [default: 0.995]."),
    click.option("--min-worst-cosine", type=float, help="Target worst-case cosine of int8 outputs to fp32 [default: 0.98]."),
]


def _with(options):
    def apply(function):
        for option in reversed(options):
            function = option(function)
        return function

    return apply


@main.command()
@click.argument("model")
@click.argument("output", type=click.Path(file_okay=False))
@click.option("--task", type=click.Choice(TASK_CHOICES), help="Head to export [default: from config.json architectures].")
@click.option("--opset", type=int, default=17, show_default=True, help="ONNX opset (14 to 17).")
@click.option("--no-optimize", is_flag=True, help="Skip the fused graph.")
@click.option("--no-quantize", is_flag=True, help="Skip the int8 graph.")
@click.option("--fp16", is_flag=True, help="Also write the fp16 graph for CUDA.")
@click.option("--atol", type=float, default=1e-4, show_default=True, help="Tolerance of the validation against PyTorch.")
@_with(_target_options)
@click.option("--revision", help="Hub revision (branch, tag or commit) when MODEL is a Hub id.")
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists and is not empty.")
def export(model, output, task, opset, no_optimize, no_quantize, fp16, atol, calibration_texts, min_cosine,
           min_worst_cosine, revision, force):
    """Export checkpoint MODEL (folder or Hub id) to the deployable folder OUTPUT."""
    from . import export as export_model

    result = export_model(model, output, task=task, optimize=not no_optimize, quantize=not no_quantize, fp16=fp16,
                          opset=opset, atol=atol, calibration_texts=calibration_texts, min_cosine=min_cosine,
                          min_worst_cosine=min_worst_cosine, force=force, revision=revision, echo=_progress)
    click.echo(f"exported {result.task} to {result.folder} in {sum(result.seconds.values()):.1f} s")
    click.echo(_variants_table(result.manifest))


@main.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--fp16", is_flag=True, help="Also write the fp16 graph for CUDA.")
@click.option("--atol", type=float, default=1e-4, show_default=True, help="Tolerance of the validation against model.onnx.")
def optimize(folder, fp16, atol):
    """Add the fused graph (model_optimized.onnx) to an exported FOLDER."""
    from . import optimize as optimize_folder

    for record in optimize_folder(folder, fp16=fp16, atol=atol, echo=_progress).values():
        click.echo(f"{record['file']}: {_fused_summary(record)}; {_validation_summary(record)}")


@main.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@_with(_target_options)
@click.option("--no-target", is_flag=True, help="Quantize every MatMul, whatever the fidelity.")
@click.option("--per-tensor", is_flag=True, help="One weight scale per tensor instead of per output channel.")
@click.option("--graph", type=click.Choice(["auto", "fused", "unfused"]), default="auto", show_default=True, help="Which fp32 graph to quantize; auto tries both and keeps the faster.")
def quantize(folder, calibration_texts, min_cosine, min_worst_cosine, no_target, per_tensor, graph):
    """Add the int8 graph (model_quantized.onnx) to an exported FOLDER, meeting a fidelity target."""
    from . import quantize as quantize_folder

    record = quantize_folder(folder, echo=_progress, calibration_texts=calibration_texts, min_cosine=min_cosine,
                             min_worst_cosine=min_worst_cosine, per_channel=not per_tensor, graph=graph,
                             target=not no_target)
    quantization = record["quantization"]
    click.echo(f"{record['file']}: from {quantization['source_graph']} ({quantization['why']})")
    click.echo(f"  fidelity: {_fidelity_summary(record['fidelity'])}")
    click.echo(f"  kept in fp32: {len(quantization['kept_fp32'])} MatMul(s), "
               f"{quantization['kept_fp32_compute_share']:.1%} of the compute")


@main.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--calibration-texts", type=click.Path(exists=True, dir_okay=False), help="Texts to measure the int8 graph on [default: built-in sample].")
def validate(folder, calibration_texts):
    """Re-check every variant of FOLDER: files, checksums, outputs against fp32 (and PyTorch if it can)."""
    from .graph.revalidate import validate_folder

    for line in validate_folder(folder, calibration_texts, echo=_progress):
        click.echo(line)


@main.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the whole manifest as JSON.")
def info(folder, as_json):
    """Show FOLDER's task, labels, variants with sizes and validation / fidelity figures."""
    from .artifacts import require_manifest
    from .config import load_config

    manifest = require_manifest(folder)
    if as_json:
        click.echo(json.dumps(manifest, indent=2))
        return
    config = load_config(folder)
    source = manifest["source"]
    click.echo(f"task: {manifest['task']} ({manifest['architecture']})")
    if manifest["task"] in ("text-classification", "token-classification"):
        click.echo(f"labels: {', '.join(config.id2label[i] for i in sorted(config.id2label))}")
    click.echo(f"model: {config.n_layers} layers, dim {config.dim}, {config.n_heads} heads, vocab {config.vocab_size}, "
               f"max length {config.max_position_embeddings}")
    click.echo(f"source: {source['checkpoint']}" + (f" @ {source['revision']}" if source.get("revision") else ""))
    click.echo(f"opset {manifest['opset']}, exported {manifest['created']} with "
               + ", ".join(f"{name} {version}" for name, version in manifest["tools"].items()))
    click.echo(_variants_table(manifest))


def _variants_table(manifest: dict) -> str:
    lines = ["variants:"]
    for name, record in manifest["variants"].items():
        lines.append(f"  {name:<10} {record['file']:<27} {record['size_bytes'] / 1e6:8.1f} MB  {record['precision']}")
        if "fused_ops" in record:
            lines.append(f"             fused: {_fused_summary(record)}")
        if "validation" in record:
            lines.append(f"             {_validation_summary(record)}")
        if "fidelity" in record:
            lines.append(f"             fidelity to fp32: {_fidelity_summary(record['fidelity'])}")
        if "quantization" in record:
            quantization = record["quantization"]
            lines.append(f"             from {quantization['source_graph']}, {quantization['weights']}, "
                         f"{len(quantization['kept_fp32'])} MatMul(s) kept in fp32")
    return "\n".join(lines)


def _fused_summary(record: dict) -> str:
    fused = record["fused_ops"]
    text = ", ".join(f"{op} {count}" for op, count in fused["counts"].items())
    if "embed_layer_norm_not_fused" in fused:
        text += f" (embedding layer norm not fused: {fused['embed_layer_norm_not_fused']})"
    return text


def _validation_summary(record: dict) -> str:
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


def _fidelity_summary(figures: dict) -> str:
    parts = [f"mean cosine {figures['mean_cosine']:.5f}", f"worst {figures['min_cosine']:.5f}",
             f"max abs diff {figures['max_abs_diff']:.2e}"]
    for key in ("top1_agreement", "span_agreement"):
        if key in figures:
            parts.append(f"{key.replace('_', ' ')} {figures[key]:.1%}")
    return ", ".join(parts) + f" ({figures['rows']} rows)"


# --- predict ----------------------------------------------------------------------------------

# CLI option -> pipeline option; only the options given are passed, and the pipeline refuses those
# its task does not take.
PREDICT_OPTIONS = (
    "top_k", "function_to_apply", "aggregation_strategy", "ignore_labels", "stride", "doc_stride", "max_answer_len",
    "max_seq_len", "max_question_len", "handle_impossible_answer", "targets", "pooling", "normalize",
)


@main.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.argument("texts", nargs=-1)
@click.option("--input", "input_file", type=click.Path(exists=True, dir_okay=False), help=".txt (one text per line) or .jsonl (one JSON object per line with the task's fields).")
@click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), default="cpu", show_default=True)
@click.option("--variant", type=click.Choice(["auto", "fp32", "optimized", "quantized", "fp16"]), default="auto", show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads [default: all cores].")
@click.option("--question", help="question-answering: the question asked of each TEXT (the contexts).")
@click.option("--choice", "choices", multiple=True, help="multiple-choice: a choice for each TEXT (the prompts); repeat it.")
@click.option("--top-k", type=int, help="text-classification, fill-mask, question-answering: how many results.")
@click.option("--function-to-apply", type=click.Choice(["softmax", "sigmoid", "none"]), help="text-classification.")
@click.option("--aggregation-strategy", type=click.Choice(["none", "simple", "first", "average", "max"]), help="token-classification.")
@click.option("--ignore-labels", help="token-classification: comma-separated labels to drop [default: O].")
@click.option("--stride", type=int, help="token-classification: overlap of windows over long texts, in tokens.")
@click.option("--doc-stride", type=int, help="question-answering: overlap of context windows, in tokens.")
@click.option("--max-answer-len", type=int, help="question-answering.")
@click.option("--max-seq-len", type=int, help="question-answering.")
@click.option("--max-question-len", type=int, help="question-answering.")
@click.option("--handle-impossible-answer", is_flag=True, default=None, help="question-answering: allow the empty answer.")
@click.option("--targets", help="fill-mask: comma-separated words to score.")
@click.option("--pooling", type=click.Choice(["mean", "cls"]), help="feature-extraction: sentence vectors.")
@click.option("--normalize", is_flag=True, default=None, help="feature-extraction: unit-length vectors.")
def predict(folder, texts, input_file, device, variant, batch_size, threads, question, choices, **options):
    """Run FOLDER's model on TEXTs or an --input file; one JSON line per input, in input order."""
    from . import load

    if bool(texts) == bool(input_file):
        raise click.UsageError("give either TEXT arguments or --input FILE")
    given = {name: value for name, value in options.items() if value is not None and name in PREDICT_OPTIONS}
    for name in ("ignore_labels", "targets"):
        if name in given:
            given[name] = [part.strip() for part in given[name].split(",") if part.strip()]
    pipe = load(folder, device=device, variant=variant, threads=threads)
    _progress(f"{pipe.task} on {pipe.device} with the {pipe.variant} graph")
    if input_file:
        items, count = _read_inputs(Path(input_file), pipe.task), _count_lines(Path(input_file))
    else:
        items, count = iter([_from_argument(text, pipe.task, question, choices) for text in texts]), len(texts)
    try:
        results = pipe(items, batch_size=batch_size, **given)
        with click.progressbar(length=count, file=sys.stderr, label="predicting") if input_file else _NoBar() as bar:
            for result in results:
                click.echo(json.dumps(_jsonable(result), ensure_ascii=False))
                bar.update(1)
    except (TypeError, ValueError) as exc:  # bad input or options: the user's to fix
        raise click.ClickException(str(exc)) from None


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, steps: int) -> None:
        pass


def _from_argument(text: str, task: str, question: str | None, choices: tuple[str, ...]):
    if task == "question-answering":
        if not question:
            raise click.UsageError("question-answering needs --question (each TEXT is a context)")
        return {"question": question, "context": text}
    if task == "multiple-choice":
        if not choices:
            raise click.UsageError("multiple-choice needs --choice, once per choice (each TEXT is a prompt)")
        return {"prompt": text, "choices": list(choices)}
    return text


def _read_inputs(path: Path, task: str):
    """Inputs from a .txt (a text per non-empty line) or .jsonl file (a JSON object per line), lazily."""
    jsonl = path.suffix.lower() == ".jsonl"
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            if not jsonl:
                yield line.rstrip("\r\n")
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path.name} line {number} is not JSON ({exc.msg})") from None
            yield _from_record(record, task, f"{path.name} line {number}")


def _from_record(record, task: str, where: str):
    fields = {
        "question-answering": ("question", "context"),
        "multiple-choice": ("prompt", "choices"),
    }.get(task, ("text",))
    if isinstance(record, str) and fields == ("text",):
        return record
    if not isinstance(record, dict) or not set(fields) <= set(record):
        raise ValueError(f"{where}: {task} needs an object with {', '.join(fields)}")
    if task == "text-classification" and "text_pair" in record:
        return {"text": record["text"], "text_pair": record["text_pair"]}
    return record[fields[0]] if fields == ("text",) else {name: record[name] for name in fields}


def _count_lines(path: Path) -> int:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return sum(1 for line in handle if line.strip())


def _jsonable(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    return value


# --- benchmark --------------------------------------------------------------------------------


@main.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--batch-size", "batch_sizes", type=click.IntRange(min=1), multiple=True, help="Repeat for several [default: 1].")
@click.option("--sequence-length", "sequence_lengths", type=click.IntRange(min=1), multiple=True, help="Repeat for several [default: 128].")
@click.option("--variant", "variants", type=click.Choice(["fp32", "optimized", "quantized", "fp16"]), multiple=True, help="Repeat for several [default: every variant the device can run].")
@click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), default="cpu", show_default=True)
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads [default: all cores].")
@click.option("--compare-torch", type=click.Path(), help="Checkpoint (folder or Hub id) to add PyTorch eager rows for (needs the [export] extra).")
@click.option("--warmup", type=click.IntRange(min=0), default=5, show_default=True, help="Untimed runs before each measurement.")
@click.option("--runs", type=click.IntRange(min=1), default=20, show_default=True, help="At least this many timed runs per row.")
@click.option("--seconds", type=click.FloatRange(min=0), default=2.0, show_default=True, help="And at least this long per row.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the rows and the machine as JSON.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), help="Write a PNG of latency against sequence length (needs matplotlib).")
def benchmark(folder, batch_sizes, sequence_lengths, variants, device, threads, compare_torch, warmup, runs, seconds,
              json_path, plot_path):
    """Measure latency and throughput of FOLDER's variants side by side on synthetic inputs."""
    from .artifacts import staged_file
    from .benchmark import benchmark_folder, format_table, plot

    result = benchmark_folder(folder, variants=list(variants) or None, batch_sizes=batch_sizes or (1,),
                              sequence_lengths=sequence_lengths or (128,), device=device, threads=threads,
                              compare_torch=compare_torch, warmup=warmup, min_runs=runs, min_seconds=seconds,
                              echo=_progress)
    click.echo(format_table(result))
    if json_path:
        with staged_file(Path(json_path).absolute()) as tmp:
            tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        _progress(f"wrote {json_path}")
    if plot_path:
        plot(result, plot_path)
        _progress(f"wrote {plot_path}")


# --- demo checkpoint --------------------------------------------------------------------------


@main.command("demo-checkpoint")
@click.argument("output", type=click.Path(file_okay=False))
@click.option("--task", type=click.Choice(TASK_NAMES), default="text-classification", show_default=True)
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists and is not empty.")
def demo_checkpoint(output, task, force):
    """Write a small DistilBERT checkpoint with RANDOM weights to OUTPUT, for trying the tool offline.

    Its tokenizer is a WordPiece vocabulary trained on the package's sample texts; its predictions
    mean nothing. Needs the [export] extra.
    """
    from .artifacts import staged_folder

    try:
        from .exporting.demo import make_checkpoint
    except ImportError as exc:
        raise click.ClickException(f"demo-checkpoint needs PyTorch ({exc.name} is missing): pip install 'distilbert-onnx[export]'") from None
    with staged_folder(output, force) as staging:
        make_checkpoint(staging, task)
    click.echo(f"wrote a random-weight {task} checkpoint to {output} (its predictions mean nothing)")


if __name__ == "__main__":
    main()
