"""The HTTP server's endpoints, on a real uvicorn server on a free localhost port: /predict equal to
pipe() for every task, /v1/embeddings in OpenAI's shape, /health, /info, /metrics, the OpenAPI
document, one folder at the root and several under /models/{name}/, and every bad request."""

from __future__ import annotations

import base64
import json

import httpx
import numpy as np
import pytest
from runtime_helpers import TEXTS, assert_same
from serve_helpers import jsonable, metric, running, wait_ready

import distilbert_onnx as dox

TASKS = ["text-classification", "token-classification", "question-answering", "fill-mask", "multiple-choice",
         "feature-extraction"]
CONTEXT = "Maria Gonzalez lives in Paris and works for the United Nations in Geneva."
# task -> (inputs, parameters) sent to /predict and passed to pipe() the same way
CALLS = {
    "text-classification": [("I love Paris.", {}), (TEXTS, {"top_k": None}),
                            ({"text": "I love Paris.", "text_pair": "So do I."}, {"function_to_apply": "sigmoid"})],
    "token-classification": [(TEXTS[0], {}), (TEXTS[:2], {"aggregation_strategy": "simple"})],
    "question-answering": [({"question": "Where does Maria live?", "context": CONTEXT}, {}),
                           ([{"question": "Who?", "context": CONTEXT}, {"question": "Where?", "context": CONTEXT}], {"top_k": 2})],
    "fill-mask": [("Paris is the [MASK] of France.", {}), (["The [MASK] is here.", "Hello [MASK]."], {"top_k": 3})],
    "multiple-choice": [({"prompt": "Maria lives in", "choices": ["Paris", "Rome", "Geneva"]}, {}),
                        ("Maria lives in", {"choices": ["Paris", "Rome"]})],
    "feature-extraction": [("Hello", {}), (TEXTS[:3], {"pooling": "mean", "normalize": True})],
}


@pytest.fixture(scope="module")
def pipes(exported):
    """fp32 graphs: their results do not depend on the batch beyond 1e-6 (int8 ones move by ~1e-4)."""
    return {task: dox.load(exported[task], variant="fp32") for task in TASKS}


@pytest.fixture(scope="module")
def client():
    with httpx.Client(timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def several(pipes, client):
    """Every task's folder in one server, each under /models/{task}/ (its folder's name)."""
    with running(dox.serve.app(list(pipes.values()))) as url:
        wait_ready(client, url)
        yield url


@pytest.fixture(scope="module")
def single(exported, client):
    """One folder, served at the root, given as a path (loaded when the app starts)."""
    with running(dox.serve.app(exported["text-classification"], max_inputs=8, max_body_bytes=4096)) as url:
        wait_ready(client, url)
        yield url


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_predict_is_what_pipe_returns(task, pipes, several, client):
    for inputs, parameters in CALLS[task]:
        response = client.post(f"{several}/models/{task}/predict", json={"inputs": inputs, "parameters": parameters})
        assert response.status_code == 200, response.text
        assert_same(response.json(), jsonable(pipes[task](inputs, **parameters)), atol=1e-5)


def test_one_folder_is_served_at_the_root(single, exported, client):
    pipe = dox.load(exported["text-classification"])  # the int8 graph, as the server loads it
    response = client.post(f"{single}/predict", json={"inputs": TEXTS[:3]})
    assert_same(response.json(), jsonable(pipe(TEXTS[:3])), atol=2e-3)
    assert client.get(f"{single}/info").json()["variant"] == "quantized"
    assert client.get(f"{single}/models/text-classification/predict").status_code == 404


def test_embeddings_in_openai_shape(pipes, several, client):
    url = f"{several}/models/feature-extraction/v1/embeddings"
    pipe = pipes["feature-extraction"]
    expected = pipe(TEXTS, pooling="mean", normalize=True)
    body = client.post(url, json={"input": TEXTS, "model": "feature-extraction"}).json()
    assert body["object"] == "list" and body["model"] == "feature-extraction"
    assert [item["index"] for item in body["data"]] == list(range(len(TEXTS)))
    assert all(item["object"] == "embedding" for item in body["data"])
    np.testing.assert_allclose([item["embedding"] for item in body["data"]], expected, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm([item["embedding"] for item in body["data"]], axis=1), 1, atol=1e-5)
    tokens = sum(len(encoding.ids) for encoding in pipe.context.tokenizer.encode(TEXTS))
    assert body["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}

    one = client.post(url, json={"input": TEXTS[0], "encoding_format": "base64"}).json()
    vector = np.frombuffer(base64.b64decode(one["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_allclose(vector, pipe(TEXTS[0], pooling="mean", normalize=True), atol=1e-5)


def test_embeddings_only_where_the_task_is_feature_extraction(several, client):
    response = client.post(f"{several}/models/text-classification/v1/embeddings", json={"input": "x"})
    assert response.status_code == 404 and response.json()["type"] == "not_found"


def test_health_info_metrics_and_docs(several, single, client):
    assert client.get(f"{several}/health").json() == {"status": "ready"}
    info = client.get(f"{several}/info").json()
    assert sorted(info["models"]) == sorted(TASKS)
    assert info["models"]["text-classification"]["variant"] == "fp32"
    assert info["models"]["token-classification"]["labels"]
    assert info["limits"]["max_batch_tokens"] > 0 and info["versions"]["onnxruntime"]
    model_info = client.get(f"{several}/models/question-answering/info").json()
    assert model_info["task"] == "question-answering" and model_info["device"] == "cpu"
    single_info = client.get(f"{single}/info").json()
    assert single_info["task"] == "text-classification" and single_info["limits"]["max_inputs"] == 8

    client.post(f"{several}/models/fill-mask/predict", json={"inputs": "Hello [MASK]."})
    page = client.get(f"{several}/metrics")
    assert page.headers["content-type"].startswith("text/plain")
    assert metric(page.text, "distilbert_onnx_requests_total", path="/models/fill-mask/predict", status="200") >= 1
    assert metric(page.text, "distilbert_onnx_request_seconds_count", path="/models/fill-mask/predict") >= 1
    assert metric(page.text, "distilbert_onnx_batch_rows_count", model="fill-mask") >= 1
    assert metric(page.text, "distilbert_onnx_batch_tokens_sum", model="fill-mask") > 0
    assert "distilbert_onnx_queue_rows" in page.text

    schema = client.get(f"{several}/openapi.json").json()
    assert {"/health", "/info", "/models/fill-mask/predict", "/models/feature-extraction/v1/embeddings"} <= set(schema["paths"])
    assert "requestBody" in schema["paths"]["/models/fill-mask/predict"]["post"]
    assert "openapi.json" in client.get(f"{several}/docs").text


def pipeline_message(pipe, inputs, parameters) -> str:
    with pytest.raises((TypeError, ValueError)) as error:
        pipe(inputs, **parameters)
    return str(error.value)


@pytest.mark.parametrize("task, inputs, parameters", [
    ("text-classification", 5, {}),
    ("text-classification", ["fine", None], {}),
    ("text-classification", "x", {"top_k": 0}),
    ("text-classification", "x", {"unknown": 1}),
    ("question-answering", {"question": "Who?"}, {}),
    ("fill-mask", "no mask here", {}),
    ("multiple-choice", {"prompt": "x", "choices": []}, {}),
    ("feature-extraction", "x", {"pooling": "max"}),
])
def test_bad_inputs_get_the_pipeline_message(task, inputs, parameters, pipes, several, client):
    response = client.post(f"{several}/models/{task}/predict", json={"inputs": inputs, "parameters": parameters})
    assert response.status_code == 422
    assert response.json() == {"error": pipeline_message(pipes[task], inputs, parameters), "type": "invalid_input"}


@pytest.mark.parametrize("content, status, kind, message", [
    (b'{"inputs": ', 400, "bad_request", "the body is not valid JSON"),
    (b"\xff\xfe", 400, "bad_request", "not UTF-8"),
    (b"", 400, "bad_request", "the body is empty"),
    (b'["a"]', 422, "invalid_input", "the body is an array: send a JSON object"),
    (b'{"parameters": {}}', 422, "invalid_input", '"inputs" is missing'),
    (b'{"inputs": "a", "options": {}}', 422, "invalid_input", "unknown field 'options'"),
    (b'{"inputs": "a", "parameters": [1]}', 422, "invalid_input", '"parameters" is an array'),
    (json.dumps({"inputs": ["a"] * 9}).encode(), 413, "too_large", "9 inputs in one request; this server takes at most 8"),
    (json.dumps({"inputs": "a" * 5000}).encode(), 413, "too_large", "this server takes at most 4096"),
])
def test_bad_requests(content, status, kind, message, single, client):
    response = client.post(f"{single}/predict", content=content)
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "type"} and body["type"] == kind and message in body["error"]
    assert "Traceback" not in response.text


def test_a_large_body_without_a_length_is_refused_while_read(single, client):
    chunks = iter([b'{"inputs": "', b"a" * 3000, b"a" * 3000, b'"}'])
    response = client.post(f"{single}/predict", content=chunks)  # chunked: no Content-Length
    assert response.status_code == 413 and "at most 4096" in response.json()["error"]


def test_bad_embedding_requests(several, client):
    url = f"{several}/models/feature-extraction/v1/embeddings"
    cases = [({"input": []}, "empty list"), ({"input": [1, 2]}, "item 0 of the input list is a int"),
             ({"input": "x", "encoding_format": "int8"}, "encoding_format"), ({"text": "x"}, "unknown field 'text'"),
             ({}, '"input" is missing')]
    for body, message in cases:
        response = client.post(url, json=body)
        assert response.status_code == 422 and message in response.json()["error"], (body, response.text)


def test_unknown_paths_and_methods(single, client):
    missing = client.get(f"{single}/nowhere")
    assert missing.status_code == 404 and missing.json()["type"] == "not_found"
    wrong = client.get(f"{single}/predict")
    assert wrong.status_code == 405 and wrong.json() == {"error": "GET is not allowed on /predict", "type": "method_not_allowed"}


def test_a_folder_that_cannot_be_loaded(exported, tmp_path, client):
    import shutil

    folder = shutil.copytree(exported["text-classification"], tmp_path / "broken")
    (folder / "model_quantized.onnx").write_bytes(b"not a model")
    with running(dox.serve.app(folder)) as url:
        for _ in range(300):
            health = client.get(f"{url}/health")
            if health.json()["status"] != "loading":
                break
        assert health.status_code == 503 and health.json()["status"] == "failed"
        assert "model_quantized.onnx does not match the sha256" in health.json()["error"]
        response = client.post(f"{url}/predict", json={"inputs": "x"})
        assert response.status_code == 503 and "could not be loaded" in response.json()["error"]


def test_two_folders_with_one_name_are_refused(exported):
    folder = exported["text-classification"]
    with pytest.raises(ValueError, match="two folders are named 'text-classification'"):
        dox.serve.app([folder, folder])
