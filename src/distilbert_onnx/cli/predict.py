"""`distilbert-onnx predict`: a folder's model on texts or an input file, one JSON line per input."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..tables.json_lines import read_lines
from ..variants import AUTO, BACKENDS, VARIANTS
from ..runtime.pipelines.base import plain
from ..tasks import TaskSpec
from . import bulk
from .app import main, progress, with_options

# CLI option -> pipeline option; only the options given are passed, and the pipeline refuses those
# its task does not take.
PREDICT_OPTIONS = (
    "top_k", "function_to_apply", "aggregation_strategy", "ignore_labels", "stride", "doc_stride", "max_answer_len",
    "max_seq_len", "max_question_len", "handle_impossible_answer", "targets", "pooling", "normalize",
)


@main.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.argument("texts", nargs=-1)
@click.option("--input", "input_file", type=click.Path(exists=True, dir_okay=False), help=".txt (one text per line) or .jsonl (one JSON object per line with the task's fields); with --output a .parquet, .csv or .jsonl table.")
@click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), default="cpu", show_default=True)
@click.option("--variant", type=click.Choice([AUTO, *VARIANTS]), default=AUTO, show_default=True)
@click.option("--backend", type=click.Choice(BACKENDS), default="auto", show_default=True, help="Runtime: auto picks per variant (openvino needs the [openvino] extra).")
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
@with_options(bulk.BULK_OPTIONS)
def predict(folder, texts, input_file, device, variant, backend, batch_size, threads, question, choices, **options):
    """Run FOLDER's model on TEXTs or an --input file; one JSON line per input, in input order.

    With --output: score the --input table into a Parquet / JSON Lines file or a folder of parts."""
    from .. import load

    given = {name: value for name, value in options.items() if value is not None and name in PREDICT_OPTIONS}
    for name in ("ignore_labels", "targets"):
        if name in given:
            given[name] = [part.strip() for part in given[name].split(",") if part.strip()]
    if options["output"]:
        if texts or question or choices:
            raise click.UsageError("--output scores an --input table: TEXT arguments, --question and --choice do not apply")
        return bulk.run(folder, input_file, device, variant, backend, batch_size, threads, given, options)
    bulk.check_unused(options)
    if bool(texts) == bool(input_file):
        raise click.UsageError("give either TEXT arguments or --input FILE")
    pipe = load(folder, device=device, variant=variant, backend=backend, threads=threads)
    progress(f"{pipe.task} on {pipe.device} with the {pipe.variant} graph ({pipe.backend}, {pipe.precision})")
    if input_file:
        items, count = _read_inputs(Path(input_file), pipe.context.spec), _count_lines(Path(input_file))
    else:
        items, count = iter([_from_argument(text, pipe.context.spec, question, choices) for text in texts]), len(texts)
    try:
        results = pipe(items, batch_size=batch_size, **given)
        with click.progressbar(length=count, file=sys.stderr, label="predicting") if input_file else _NoBar() as bar:
            for result in results:
                click.echo(json.dumps(plain(result), ensure_ascii=False))
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


# The options that fill a record's other required fields when each TEXT fills its text_field.
_FIELD_OPTIONS = {"question": "--question", "choices": "--choice, once per choice"}


def _from_argument(text: str, spec: TaskSpec, question: str | None, choices: tuple[str, ...]):
    """One TEXT argument as the pipeline's input: the text itself, or a record with the --question
    or --choice values (TaskSpec.text_field says which field TEXT is)."""
    given = {spec.text_field: text, "question": question, "choices": list(choices)}
    for field in spec.required_fields:
        if field != spec.text_field and not given[field]:
            raise click.UsageError(f"{spec.name} needs {_FIELD_OPTIONS[field]} (each TEXT is a {spec.text_field})")
    return spec.input_from_record({field: given[field] for field in spec.required_fields})


def _read_inputs(path: Path, spec: TaskSpec):
    """Inputs from a .txt (a text per non-empty line) or .jsonl file (a JSON value per line), lazily."""
    if path.suffix.lower() != ".jsonl":
        with open(path, encoding="utf-8") as handle:
            yield from (line.rstrip("\r\n") for line in handle if line.strip())
        return
    for number, value, unreadable in read_lines(path, records=False):
        if unreadable:
            raise ValueError(f"{path.name} line {number} is {unreadable}")
        yield spec.input_from_record(value, f"{path.name} line {number}")


def _count_lines(path: Path) -> int:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return sum(1 for line in handle if line.strip())
