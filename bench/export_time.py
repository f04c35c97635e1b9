"""Export time and peak memory against Optimum, on a distilbert-base-sized classifier (random weights).

  export only:   distilbert-onnx export --no-optimize --no-quantize    vs  optimum-cli export onnx
  whole export:  distilbert-onnx export (validate, fuse, quantize, and the OpenVINO IRs when
                 openvino and nncf are installed)                      vs  optimum-cli export onnx
                                                                           + optimum-cli onnxruntime quantize --avx512_vnni
  (and distilbert-onnx export --no-openvino, and --no-optimize: validated fp32 and accuracy-aware
  int8, no fused graph)
--whole-only measures the whole-export rows only.
Each command runs --repeat times under /usr/bin/time -v; the median wall time and the largest peak
RSS are reported. Run with the project's benchmark environment (see bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

from common import WORK, base_classifier, fresh, machine, optimum_cli, table, timed_command


def measure(commands: list[list[str]], repeat: int, outputs) -> dict:
    """Median wall seconds (all commands summed) and the largest peak RSS over `repeat` runs."""
    walls, peaks = [], []
    for _ in range(repeat):
        for output in outputs:
            fresh(output)
        runs = [timed_command(command) for command in commands]
        walls.append(sum(run["seconds"] for run in runs))
        peaks.append(max(run["peak_mb"] for run in runs))
    return {"seconds": round(statistics.median(walls), 2), "peak_mb": max(peaks), "runs": walls}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--whole-only", action="store_true", help="only the whole-export rows")
    args = parser.parse_args()
    checkpoint = base_classifier()
    ours = [sys.executable, "-m", "distilbert_onnx.cli", "export", str(checkpoint)]
    ours_fp32, ours_all, ours_lean = WORK / "ours-fp32", WORK / "ours-all", WORK / "ours-no-optimize"
    ours_onnx = WORK / "ours-no-openvino"
    optimum_fp32, optimum_int8 = WORK / "optimum-export", WORK / "optimum-int8"
    optimum_export = [*optimum_cli(), "export", "onnx", "--model", str(checkpoint), "--task", "text-classification",
                      str(optimum_fp32)]
    optimum_quantize = [*optimum_cli(), "onnxruntime", "quantize", "--onnx_model", str(optimum_fp32), "--avx512_vnni",
                        "-o", str(optimum_int8)]
    results = {}
    if not args.whole_only:
        results["ours export only"] = measure([[*ours, str(ours_fp32), "--no-optimize", "--no-quantize"]], args.repeat, [ours_fp32])
        results["optimum export"] = measure([optimum_export], args.repeat, [optimum_fp32])
    results["ours whole export"] = measure([[*ours, str(ours_all)]], args.repeat, [ours_all])
    results["ours export --no-openvino"] = measure([[*ours, str(ours_onnx), "--no-openvino"]], args.repeat, [ours_onnx])
    if not args.whole_only:
        results["ours export --no-optimize"] = measure([[*ours, str(ours_lean), "--no-optimize"]], args.repeat, [ours_lean])
    results["optimum export + quantize"] = measure([optimum_export, optimum_quantize], args.repeat, [optimum_fp32, optimum_int8])
    rows = [[name, f"{r['seconds']:.1f}", r["peak_mb"]] for name, r in results.items()]
    print(table(f"export of a distilbert-base-sized classifier ({machine()})", ["command", "wall s (median)", "peak RSS MB"], rows))
    print()
    optimum_whole = results["optimum export + quantize"]["seconds"]
    ratios = [
        ["whole export: Optimum (export + quantize) time / ours", optimum_whole / results["ours whole export"]["seconds"], ">= 1"],
        ["export --no-openvino: Optimum (export + quantize) time / ours",
         optimum_whole / results["ours export --no-openvino"]["seconds"], ""],
    ]
    if not args.whole_only:
        ratios = [
            ["export only: Optimum time / ours", results["optimum export"]["seconds"] / results["ours export only"]["seconds"], ">= 1"],
            ["export only: our peak RSS (MB)", results["ours export only"]["peak_mb"], "<= 1536"],
            *ratios,
            ["export --no-optimize: Optimum (export + quantize) time / ours",
             optimum_whole / results["ours export --no-optimize"]["seconds"], ""],
        ]
    print(table("ratios", ["figure", "value", "goal"], [[n, f"{v:.2f}" if isinstance(v, float) else v, g] for n, v, g in ratios]))
    (WORK / "export_time.json").write_text(json.dumps({"machine": machine(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
