"""`evaluate` on the tiny exported folders and real Parquet / CSV / JSON Lines files: every task's
figures equal an independent computation (scikit-learn, seqeval, torchmetrics' SQuAD, scipy) on the
same predictions, one row per variant (and PyTorch with --checkpoint), and bad data is one `Error:`
line naming the row and column."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import seqeval.metrics as seqeval
from scipy import stats
from sklearn import metrics as sk
from sklearn.neighbors import NearestNeighbors
from tokenizers import Tokenizer

from distilbert_onnx.checks.evaluation import evaluate_folder, evaluate_pipeline, load_labelled
from distilbert_onnx.exporting.demo import sample_texts
from distilbert_onnx.tasks import get_task

EXACT = 1e-9
TEXTS = sample_texts()[:24]


def write_jsonl(path, records) -> str:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return str(path)


def figures(result) -> dict:
    return {name: estimate.value for name, estimate in result.score.figures.items()}


def evaluate(cli, *arguments):
    return cli("evaluate", *arguments)


# --- each task against its reference --------------------------------------------------------------


def test_text_classification_equals_scikit_learn(pipes, tmp_path):
    pipe = pipes["text-classification"]
    gold = [["NEGATIVE", 1, "POSITIVE", 0][i % 4] for i in range(len(TEXTS))]  # names and ids
    path = write_jsonl(tmp_path / "labelled.jsonl", [{"text": t, "label": g} for t, g in zip(TEXTS, gold)])
    result = evaluate_pipeline(pipe, load_labelled(path, pipe.context.spec))
    predicted = [{"NEGATIVE": 0, "POSITIVE": 1}[entry["label"]] for entry in pipe(TEXTS)]
    gold_ids = [{"NEGATIVE": 0, "POSITIVE": 1}.get(g, g) for g in gold]
    assert result.score.metric == "accuracy" and result.predictions == predicted and result.changed is None
    assert figures(result) == pytest.approx({"accuracy": 100 * sk.accuracy_score(gold_ids, predicted),
                                             "macro_f1": 100 * sk.f1_score(gold_ids, predicted, average="macro")},
                                            abs=EXACT)


def test_multi_label_by_problem_type(export_tiny, tmp_path):
    import distilbert_onnx as dox

    labels = ["sport", "politics", "weather"]
    _, folder = export_tiny("text-classification", labels=labels,
                            extra_config={"problem_type": "multi_label_classification"})
    pipe = dox.load(folder, variant="fp32")
    gold = [[labels[i % 3]] if i % 4 else [labels[0], 2] for i in range(len(TEXTS))]
    path = write_jsonl(tmp_path / "multi.jsonl", [{"text": t, "label": g} for t, g in zip(TEXTS, gold)])
    result = evaluate_pipeline(pipe, load_labelled(path, pipe.context.spec))
    scores = np.array([[entry["score"] for entry in sorted(row, key=lambda e: labels.index(e["label"]))]
                       for row in pipe(TEXTS, top_k=None)])
    predicted = scores > 0.5
    gold_hot = np.array([[name in g or labels.index(name) in g for name in labels] for g in gold])
    assert figures(result) == pytest.approx({"accuracy": 100 * sk.accuracy_score(gold_hot, predicted),
                                             "macro_f1": 100 * sk.f1_score(gold_hot, predicted, average="macro",
                                                                           zero_division=0)}, abs=EXACT)


def _first_subtoken_tags(pipe, folder, words: list[str]) -> list[str]:
    """Word tags the independent way: tokenizers' word ids of the pre-split words, the model's
    logits, each word tagged by its first sub-token."""
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    encoding = tokenizer.encode(words, is_pretokenized=True)
    ids = np.array([encoding.ids], dtype=np.int64)
    logits = pipe.model.run({"input_ids": ids, "attention_mask": np.ones_like(ids)})["logits"][0]
    first = {}
    for position, word in enumerate(encoding.word_ids):
        if word is not None and word not in first:
            first[word] = pipe.context.config.id2label[int(logits[position].argmax())]
    return [first.get(index, "O") for index in range(len(words))]


def test_token_classification_equals_seqeval_over_words(pipes, exported, tmp_path):
    pipe, folder = pipes["token-classification"], exported["token-classification"]
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    sentences = [text.rstrip(".").split() for text in TEXTS[:12]]
    split_words = {word for words in sentences for word in words
                   if len(tokenizer.encode(word, add_special_tokens=False).ids) > 1}
    kinds = ["B-PER", "I-PER", "B-LOC", "O", "O", "I-ORG", "B-MISC"]
    gold = [[kinds[(i + j) % len(kinds)] for j in range(len(words))] for i, words in enumerate(sentences)]
    assert any(tag != "O" and word in split_words for words, tags in zip(sentences, gold)
               for word, tag in zip(words, tags))  # entities over words of several sub-tokens
    list_path = tmp_path / "ner_lists.parquet"
    pq.write_table(pa.table({"tokens": sentences, "tags": gold}), list_path)
    reference = [_first_subtoken_tags(pipe, folder, words) for words in sentences]
    expected = {name: 100 * function(gold, reference) for name, function in
                [("f1", seqeval.f1_score), ("precision", seqeval.precision_score), ("recall", seqeval.recall_score)]}
    result = evaluate_pipeline(pipe, load_labelled(list_path, pipe.context.spec, {"text": "tokens"}, "tags"))
    assert result.score.metric == "f1" and [list(p) for p in result.predictions] == reference
    assert figures(result) == pytest.approx(expected, abs=EXACT)
    # the same as whitespace-split strings, and in CSV as JSON lists
    strings = [{"tokens": " ".join(words), "tags": " ".join(tags) if i % 2 else json.dumps(tags)}
               for i, (words, tags) in enumerate(zip(sentences, gold))]
    string_path = write_jsonl(tmp_path / "ner.jsonl", strings)
    again = evaluate_pipeline(pipe, load_labelled(string_path, pipe.context.spec, {"text": "tokens"}, "tags"))
    assert figures(again) == figures(result)


def _torchmetrics_squad(gold: list[list[str]], predicted: list[str]) -> dict:
    from torchmetrics.functional.text import squad

    preds = [{"prediction_text": text, "id": str(i)} for i, text in enumerate(predicted)]
    target = [{"answers": {"text": answers or [""], "answer_start": [0] * max(len(answers), 1)}, "id": str(i)}
              for i, answers in enumerate(gold)]
    return {name: float(value) for name, value in squad(preds, target).items()}


def test_question_answering_equals_the_official_squad_computation(pipes, tmp_path):
    pipe = pipes["question-answering"]
    questions = ["Who lives in Paris?", "Where is the museum?", "What lasts two days?", "When does it open?"] * 3
    contexts = TEXTS[: len(questions)]
    answers = pipe(question=questions, context=contexts, handle_impossible_answer=True)
    gold = []
    for i, found in enumerate(answers):  # some right, some with several answers, some unanswerable
        gold.append([[], [found["answer"]], ["nothing like it", found["answer"].upper()], ["the wrong one"]][i % 4])
    rows = [{"question": q, "context": c, "answers": {"text": g, "answer_start": [0] * len(g)}}
            for q, c, g in zip(questions, contexts, gold)]
    path = tmp_path / "squad.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    result = evaluate_pipeline(pipe, load_labelled(path, pipe.context.spec, label_column="answers"))
    predicted = [found["answer"] for found in answers]
    assert result.predictions == predicted and result.score.metric == "f1"
    assert figures(result) == pytest.approx(_torchmetrics_squad(gold, predicted), abs=1e-4)  # float32 sums there
    assert 0 < figures(result)["exact_match"] < 100


def test_fill_mask_top_k_equals_scikit_learn(pipes, tmp_path):
    pipe = pipes["fill-mask"]
    texts = [f"{' '.join(text.split()[:3])} [MASK] {' '.join(text.split()[4:])}" for text in TEXTS[:16]]
    encodings = pipe.context.tokenizer.encode(texts)
    logits = []
    for encoding in encodings:
        ids = np.array([encoding.ids], dtype=np.int64)
        position = encoding.ids.index(pipe.context.tokenizer.mask_token_id)
        logits.append(pipe.model.run({"input_ids": ids, "attention_mask": np.ones_like(ids)})["logits"][0, position])
    logits = np.array(logits)
    ranked = np.argsort(-logits, axis=1)
    gold = [int(ranked[i, [0, 3, 40][i % 3]]) for i in range(len(texts))]  # at top 1, top 5, neither
    words = [pipe.context.tokenizer.id_to_token(token) for token in gold]
    keep = [i for i, word in enumerate(words) if not word.startswith("##") and not word.startswith("[")]
    path = write_jsonl(tmp_path / "masked.jsonl", [{"text": texts[i], "label": words[i]} for i in keep])
    result = evaluate_pipeline(pipe, load_labelled(path, pipe.context.spec))
    expected = {f"top{k}_accuracy": 100 * sk.top_k_accuracy_score(np.array(gold)[keep], logits[keep], k=k,
                                                                   labels=np.arange(logits.shape[1]))
                for k in (1, 5)}
    assert result.score.metric == "top1_accuracy" and figures(result) == pytest.approx(expected, abs=EXACT)


def test_multiple_choice_accuracy_by_index_or_text(pipes, tmp_path):
    pipe = pipes["multiple-choice"]
    records = [{"prompt": text, "choices": ["Paris", "London", "Rome"]} for text in TEXTS[:12]]
    chosen = [int(np.argmax([entry["score"] for entry in row])) for row in pipe(records)]
    gold = [i % 3 for i in range(len(records))]
    labelled = [{**record, "label": g if i % 2 else record["choices"][g]} for i, (record, g) in enumerate(zip(records, gold))]
    result = evaluate_pipeline(pipe, load_labelled(write_jsonl(tmp_path / "choice.jsonl", labelled), pipe.context.spec))
    assert figures(result) == pytest.approx({"accuracy": 100 * sk.accuracy_score(gold, chosen)}, abs=EXACT)


def test_sentence_vectors_spearman_knn_and_agreement(pipes, exported, tmp_path):
    pipe = pipes["feature-extraction"]
    spec = pipe.context.spec
    vectors = np.stack(pipe(TEXTS, pooling="mean", normalize=True, return_tensors=True))
    half = len(TEXTS) // 2
    scores = [float(i % 5) for i in range(half)]
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [{"a": TEXTS[i], "b": TEXTS[half + i], "score": scores[i]}
                                                   for i in range(half)])
    result = evaluate_pipeline(pipe, load_labelled(pairs, spec, {"text": "a", "text_pair": "b"}, "score"))
    cosines = (vectors[:half] * vectors[half:]).sum(axis=1)
    assert result.score.metric == "spearman"
    assert figures(result)["spearman"] == pytest.approx(100 * stats.spearmanr(cosines, scores).statistic, abs=1e-6)

    labels = [i % 3 for i in range(len(TEXTS))]
    labelled = write_jsonl(tmp_path / "labels.jsonl", [{"text": t, "label": g} for t, g in zip(TEXTS, labels)])
    result = evaluate_pipeline(pipe, load_labelled(labelled, spec))
    neighbours = NearestNeighbors(n_neighbors=2, metric="cosine").fit(vectors).kneighbors(vectors, return_distance=False)
    assert figures(result)["knn_accuracy"] == pytest.approx(100 * np.mean(np.array(labels)[neighbours[:, 1]] == labels),
                                                            abs=EXACT)

    plain = write_jsonl(tmp_path / "plain.jsonl", [{"text": t} for t in TEXTS])
    evaluation = evaluate_folder(exported["feature-extraction"], plain, label_required=False)
    rows = {row.variant: row for row in evaluation.results}
    assert evaluation.metric == "nn_agreement" and figures(rows["fp32"]) == pytest.approx(
        {"nn_agreement": 100.0, "mean_cosine": 100.0})
    assert 90 < figures(rows["quantized"])["mean_cosine"] <= 100.0


# --- the command ----------------------------------------------------------------------------------


def test_evaluate_command_table_json_variants_and_pytorch(cli, exported, checkpoints, pipes, tmp_path):
    folder = exported["text-classification"]
    gold = ["POSITIVE" if i % 3 else "NEGATIVE" for i in range(len(TEXTS))]
    path = tmp_path / "reviews.csv"
    path.write_text("review,sentiment\n" + "".join(f'"{t}",{g}\n' for t, g in zip(TEXTS, gold)), encoding="utf-8")
    result = evaluate(cli, folder, "--data", path, "--text-column", "review", "--label-column", "sentiment",
                      "--checkpoint", checkpoints["text-classification"], "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [row["variant"] for row in report["results"]] == ["torch-fp32", "fp32", "optimized", "quantized"]
    assert report["rows"] == len(TEXTS) and report["metric"] == "accuracy" and len(report["sha256"]) == 64
    rows = {row["variant"]: row for row in report["results"]}
    predicted = ["POSITIVE" == entry["label"] for entry in pipes["text-classification"](TEXTS)]
    accuracy = 100 * sk.accuracy_score([g == "POSITIVE" for g in gold], predicted)
    assert rows["fp32"]["value"] == pytest.approx(accuracy, abs=EXACT) and rows["fp32"]["changed_vs_fp32"] is None
    assert rows["torch-fp32"]["changed_vs_fp32"] == 0.0 and rows["torch-fp32"]["value"] == rows["fp32"]["value"]
    for row in report["results"]:
        assert row["rows_per_second"] > 0 and set(row["figures"]) == {"accuracy", "macro_f1"}
        assert row["drop_vs_fp32"] == pytest.approx(rows["fp32"]["value"] - row["value"])
        low, high = row["figures"]["accuracy"]["low"], row["figures"]["accuracy"]["high"]
        assert low <= row["value"] <= high
        interval = row["drop_vs_fp32_interval"]
        assert interval is None if row["variant"] == "fp32" else interval[0] <= row["drop_vs_fp32"] <= interval[1]
    assert rows["torch-fp32"]["drop_vs_fp32_interval"] == [0.0, 0.0]  # the same predictions: no uncertainty

    table = evaluate(cli, folder, "--data", path, "--text-column", "review", "--label-column", "sentiment",
                     "--variants", "quantized", "--limit", 10)
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert lines[0] == "text-classification: 10 rows of reviews.csv, metric accuracy"
    assert lines[1].split()[:7] == ["variant", "accuracy", "macro_f1", "accuracy", "drop", "vs", "fp32"]
    assert lines[3].split()[7:9] == ["-", "-"] and lines[5].endswith("drop: paired bootstrap of rows against fp32.")
    assert [line.split()[0] for line in lines[3:5]] == ["fp32", "quantized"] and len(lines) == 6


def test_evaluate_reads_parquet_with_the_default_label_column(exported, tmp_path):
    path = tmp_path / "labelled.parquet"
    pq.write_table(pa.table({"text": TEXTS, "label": [i % 2 for i in range(len(TEXTS))]}), path)
    evaluation = evaluate_folder(exported["text-classification"], path, variants=["fp32"])
    assert [row.variant for row in evaluation.results] == ["fp32"] and evaluation.rows == len(TEXTS)
    unlabelled = tmp_path / "texts.parquet"  # calibration data: the task's fields only, whatever the head
    pq.write_table(pa.table({"body": TEXTS}), unlabelled)
    spec = get_task("text-classification")
    rows = load_labelled(unlabelled, spec, {"text": "body"}, labels=False, limit=5)
    assert rows.records == [{"text": text} for text in TEXTS[:5]] and rows.labels == [None] * 5


# --- bad data -------------------------------------------------------------------------------------

BAD = [
    ("text-classification", "bad.csv", "text,sentiment\nfine,POSITIVE\n", [], "bad.csv has no column 'label'"),
    ("text-classification", "bad.jsonl", [{"text": "a", "label": "POSITIVE"}, {"text": "b", "label": "NEUTRAL"}], [],
     "bad.jsonl row 2, column 'label': 'NEUTRAL' is not a label of this model (NEGATIVE, POSITIVE)"),
    ("text-classification", "bad.jsonl", [{"text": "a", "label": 0}, {"text": "b", "label": 1}, {"text": "c", "label": 7}],
     [], "bad.jsonl row 3, column 'label': label id 7 is out of range: this model's ids are 0-1"),
    ("text-classification", "bad.csv", "text,label\n", [], "bad.csv has no rows: nothing to evaluate"),
    ("text-classification", "bad.jsonl", "", [], "bad.jsonl has no rows: nothing to evaluate"),
    ("text-classification", "bad.jsonl", [{"text": "a", "label": 0}, {"label": 1}], [],
     "bad.jsonl row 2, column 'text': missing value"),
    ("text-classification", "bad.jsonl", [{"text": "a"}], [],
     "bad.jsonl row 1, column 'label': missing label: name the labels' column with --label-column"),
    ("token-classification", "bad.jsonl", [{"text": "Maria lives in Paris", "label": "B-PER O O"}], [],
     "bad.jsonl row 1, column 'label': 3 tags for 4 words: give one tag per word"),
    ("token-classification", "bad.jsonl", [{"text": "Maria lives", "label": ["B-PER", "B-CITY"]}], [],
     "bad.jsonl row 1, column 'label': 'B-CITY' is not a label of this model"),
    ("multiple-choice", "bad.jsonl", [{"prompt": "p", "choices": ["a", "b"], "label": 2}], [],
     "bad.jsonl row 1, column 'label': choice index 2 is out of range: the row has 2 choices"),
    ("question-answering", "bad.jsonl", [{"question": "q", "context": "c", "label": 3}], [],
     "bad.jsonl row 1, column 'label': give the answers as a list of texts"),
    ("question-answering", "bad.jsonl", [{"question": ["q"], "context": "c", "label": "c"}], [],
     "bad.jsonl row 1, column 'question': a list value, expected text"),
    ("fill-mask", "bad.jsonl", [{"text": "Paris is [MASK].", "label": ["a", "b"]}], [],
     "bad.jsonl row 1, column 'label': 2 word(s) for 1 [MASK] token(s) in the text"),
    ("text-classification", "bad.jsonl", [{"text": "a", "label": 0}], ["--variants", "int4"], "unknown variant 'int4'"),
    ("text-classification", "missing.jsonl", None, [], "no data file at"),
]


@pytest.mark.parametrize("task, name, content, options, message", BAD)
def test_bad_data_is_one_error_line(cli, exported, tmp_path, task, name, content, options, message):
    path = tmp_path / name
    if isinstance(content, list):
        write_jsonl(path, content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    result = evaluate(cli, exported[task], "--data", path, "--variants", "fp32", *options)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr


def test_a_row_the_pipeline_refuses_is_named(pipes, tmp_path):
    pipe = pipes["question-answering"]
    rows = [{"question": "Who?", "context": "Maria lives in Paris.", "label": ["Maria"]},
            {"question": "Where?", "context": "   ", "label": []}]
    labelled = load_labelled(write_jsonl(tmp_path / "qa.jsonl", rows), pipe.context.spec)
    with pytest.raises(ValueError, match=r"qa\.jsonl row 2: the model's pipeline refused it: .*empty context"):
        evaluate_pipeline(pipe, labelled)
