"""Accuracy on real tasks: every variant's metric against PyTorch fp32, default and gated export.

For each fine-tuned model of finetune.py (sentence polarity, SMS spam, WNUT 2016 NER):
  1. PyTorch fp32's metric on the held-out test split (the checkpoint reloaded by the exporter's
     loader; scikit-learn accuracy / seqeval entity F1), computed here independently of `evaluate`;
  2. the default `distilbert-onnx export` (it must succeed and write an int8 variant): its exit code,
     last lines and variants;
  3. `distilbert-onnx evaluate` of every variant of that folder on the test split, with the checkpoint
     as the torch-fp32 row: each variant's metric, its drop from PyTorch fp32, and variant="auto"'s;
  4. the gated export (`--eval-data` the gate split, `--max-metric-drop 0.3`) evaluated the same way
     on the test split (rows it was not built on), and the auto choice's rows/s against the fused fp32
     variant's (`optimized`), both from that one `evaluate` run;
  5. the same gated export with `--calibration-data` the train split (the user's own texts).
Steps whose command the installed package lacks (evaluate, --eval-data) are reported as missing.
Prints a table and writes results/task_accuracy.json.

    python bench/task_accuracy.py [polarity sms-spam wnut16] [--max-metric-drop 0.3] [--threads 2] [--out F]
                                  [--exports default,gated,gated+calibration]

Data, checkpoints and exported folders are cached under $TASK_BENCH_CACHE (default
bench/results/task-accuracy); delete its exports/ folder to export again. Timings (rows/s) need a
quiet machine; the metrics do not.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import WORK, machine, table  # noqa: E402
from finetune import torch_test_metric, train  # noqa: E402
from task_data import CACHE, DATA_SETS, load, prepared  # noqa: E402


CLI = [sys.executable, "-m", "distilbert_onnx.cli"]
INT8_VARIANTS = ("quantized", "openvino-int8")
TORCH_ROW = "torch-fp32"
# The column options of the test / gate files: classifiers read text,label; NER reads a list of
# words (tokens) and one tag per word (tags).
COLUMNS = {"text-classification": ["--text-column", "text", "--label-column", "label"],
           "token-classification": ["--text-column", "tokens", "--label-column", "tags"]}


def run(command: list[str]) -> dict:
    result = subprocess.run(command, capture_output=True, text=True)
    lines = (result.stdout + result.stderr).strip().splitlines()
    return {"command": "distilbert-onnx " + " ".join(command[len(CLI):]), "rc": result.returncode,
            "stdout": result.stdout, "last_lines": lines[-12:],
            "notes": [line for line in lines if line.startswith("Error") or "left out" in line]}


def has_option(command: str, option: str) -> bool:
    result = subprocess.run([*CLI, command, "--help"], capture_output=True, text=True)
    return result.returncode == 0 and option in result.stdout


def package_fingerprint() -> str:
    """sha256 of the installed distilbert_onnx's source files: an export made by other code is redone."""
    import distilbert_onnx

    digest = hashlib.sha256()
    root = Path(distilbert_onnx.__file__).parent
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def export(checkpoint: Path, folder: Path, options: list[str]) -> dict:
    """`distilbert-onnx export` into `folder` (kept when already made with these options by this code)."""
    record_file = folder.with_name(folder.name + ".export.json")
    key = {"options": options, "package": package_fingerprint()}
    if record_file.exists() and all(json.loads(record_file.read_text()).get(k) == v for k, v in key.items()):
        return json.loads(record_file.read_text())
    shutil.rmtree(folder, ignore_errors=True)
    outcome = run([*CLI, "export", str(checkpoint), str(folder), *options])
    outcome.pop("stdout")
    outcome.update(key)
    manifest_file = folder / "distilbert_onnx.json"
    manifest = json.loads(manifest_file.read_text()) if manifest_file.is_file() else {}
    variants = manifest.get("variants", {})
    outcome["variants"] = {name: record.get("precision") for name, record in variants.items()}
    outcome["int8_written"] = [name for name in variants if name in INT8_VARIANTS]
    outcome["left_out"] = manifest.get("left_out") or {}
    outcome["gates"] = {name: record["gate"] for name, record in variants.items() if "gate" in record}
    record_file.write_text(json.dumps(outcome, indent=2))
    return outcome


def auto_choice(folder: Path, threads: int) -> str:
    """The variant `load(folder)` (variant="auto") runs here with `threads`, in a fresh process."""
    code = f"import distilbert_onnx as d; print(d.load({str(folder)!r}, threads={threads}).variant)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return result.stdout.strip().splitlines()[-1]


def evaluate(folder: Path, checkpoint: Path, data: Path, columns: list[str], torch_value: float, threads: int) -> dict:
    """`evaluate --json` of every variant on `data`, each variant's drop from our PyTorch figure, and
    the auto choice's row."""
    outcome = run([*CLI, "evaluate", str(folder), "--data", str(data), *columns, "--checkpoint", str(checkpoint),
                   "--threads", str(threads), "--json"])
    if outcome["rc"]:
        return {"error": outcome["last_lines"]}
    report = json.loads(outcome["stdout"])
    rows = {row["variant"]: {"value": row["value"], "low": row["figures"][row["metric"]]["low"],
                             "high": row["figures"][row["metric"]]["high"],
                             "drop_vs_torch": torch_value - row["value"], "drop_vs_fp32": row.get("drop_vs_fp32"),
                             "changed_vs_fp32": row.get("changed_vs_fp32"), "rows_per_second": row["rows_per_second"]}
            for row in report["results"]}
    chosen = auto_choice(folder, threads)
    speed = None
    if chosen in rows and "optimized" in rows:
        speed = rows[chosen]["rows_per_second"] / rows["optimized"]["rows_per_second"]
    return {"metric": report["metric"], "rows": report["rows"], "variants": rows, "skipped": report.get("skipped"),
            "auto": chosen, "auto_value": rows.get(chosen, {}).get("value"),
            "auto_drop_vs_torch": rows.get(chosen, {}).get("drop_vs_torch"), "auto_speed_vs_optimized": speed}


EXPORT_KINDS = ("default", "gated", "gated+calibration")


def export_kinds(files: dict[str, Path], columns: list[str], max_drop: float) -> dict[str, tuple[str | None, list[str]]]:
    """Each export measured: (the `export` option it needs, or None, its options)."""
    gate = ["--eval-data", str(files["gate"]), *columns, "--max-metric-drop", str(max_drop)]
    made = {"default": (None, []), "gated": ("--eval-data", gate),
            "gated+calibration": ("--calibration-data", [*gate, "--calibration-data", str(files["train"])])}
    return {kind: made[kind] for kind in EXPORT_KINDS}


def bench_model(name: str, max_drop: float, threads: int, export_help: str, can_evaluate: bool,
                kinds: list[str]) -> dict:
    data = DATA_SETS[name]
    checkpoint = train(name)
    files = prepared(name)
    columns = COLUMNS[data.task]
    scores = torch_test_metric(name)
    headline = "f1" if data.task == "token-classification" else "accuracy"
    out = {"model": name, "checkpoint": str(checkpoint), "test_rows": len(load(name, "test")),
           "torch_fp32": scores, "metric": headline, "exports": {}}
    for kind, (needs, options) in export_kinds(files, columns, max_drop).items():
        if kind not in kinds:
            continue
        if needs and needs not in export_help:
            out["exports"][kind] = {"missing": f"this package's export has no {needs}"}
            continue
        built = export(checkpoint, CACHE / "exports" / name / kind, options)
        if can_evaluate and built["rc"] == 0:
            built["eval"] = evaluate(CACHE / "exports" / name / kind, checkpoint, files["test"], columns, scores[headline], threads)
        out["exports"][kind] = built
    return out


def fmt(value, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def report_rows(result: dict) -> list[list]:
    rows = [[result["model"], TORCH_ROW + " (ours)", fmt(result["torch_fp32"][result["metric"]]), "", "", "", ""]]
    for kind, built in result["exports"].items():
        if "missing" in built:
            continue
        if built["rc"]:
            rows.append([result["model"], f"{kind} export FAILED (exit {built['rc']})", "", "", "", "", ""])
            continue
        evaluation = built.get("eval") or {}
        for variant, row in evaluation.get("variants", {}).items():
            mark = " <- auto" if variant == evaluation.get("auto") else ""
            rows.append([result["model"], f"{kind}: {variant}{mark}", fmt(row["value"]),
                         f"{fmt(row['low'])}-{fmt(row['high'])}", fmt(row["drop_vs_torch"]),
                         fmt(row["changed_vs_fp32"]), fmt(row["rows_per_second"], 1)])
    return rows


def summary_lines(result: dict) -> list[str]:
    lines = []
    for kind, built in result["exports"].items():
        if "missing" in built:
            lines.append(f"{result['model']}, {kind} export: not measured ({built['missing']})")
            continue
        evaluation = built.get("eval") or {}
        lines.append(f"{result['model']}, {kind} export: exit {built['rc']}, int8 written: "
                     f"{', '.join(built['int8_written']) or 'none'}; auto = {evaluation.get('auto', '-')}, "
                     f"drop vs torch {fmt(evaluation.get('auto_drop_vs_torch'))}, "
                     f"speed vs optimized {fmt(evaluation.get('auto_speed_vs_optimized'))}x")
        lines += [f"  {variant} left out: {why}" for variant, why in built["left_out"].items()]
        lines += [f"  {variant} gate on {gate['rows']} {gate['data']} rows: {gate['metric']} {gate['value']:.2f} against "
                  f"fp32 {gate['fp32_value']:.2f} (drop {gate['drop']:.2f}, 95% interval "
                  f"{' to '.join(f'{end:.2f}' for end in gate.get('drop_interval', [gate['drop']] * 2))}, at most {gate['max_drop']}): "
                  f"{'met' if gate['meets'] else 'MISSED'}" for variant, gate in built["gates"].items()]
        if built["rc"] or evaluation.get("error"):
            lines += ["  " + line for line in built["last_lines"] + (evaluation.get("error") or [])]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", choices=list(DATA_SETS), default=list(DATA_SETS), help="default: all of them")
    parser.add_argument("--max-metric-drop", type=float, default=0.3)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads of evaluate and of the auto choice")
    parser.add_argument("--out", type=Path, default=WORK / "task_accuracy.json")
    parser.add_argument("--exports", default=",".join(EXPORT_KINDS),
                        help=f"the exports to make and evaluate, of {', '.join(EXPORT_KINDS)} [default: all]")
    args = parser.parse_args()
    can_evaluate = has_option("evaluate", "--data")
    export_help = subprocess.run([*CLI, "export", "--help"], capture_output=True, text=True).stdout
    kinds = [kind for kind in args.exports.split(",") if kind]
    unknown = set(kinds) - set(EXPORT_KINDS)
    if unknown:
        parser.error(f"unknown export {sorted(unknown)[0]!r}: choose from {', '.join(EXPORT_KINDS)}")
    results = [bench_model(name, args.max_metric_drop, args.threads, export_help, can_evaluate, kinds)
               for name in args.models]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine(), "cache": str(CACHE), "results": results}, indent=2))
    header = ["model", "row", "metric (test)", "95% interval", "drop vs torch", "% changed vs fp32", "rows/s"]
    print(table("Task metric on the held-out test split (accuracy for classifiers, entity F1 for NER, points)",
                header, [row for result in results for row in report_rows(result)]))
    for result in results:
        print("\n".join(summary_lines(result)))
    if not can_evaluate:
        print("this package has no `evaluate` command: only the PyTorch figures and the exports were measured")
    print(f"written {args.out}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
