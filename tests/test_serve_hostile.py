"""The server under clients that misbehave, as real processes and raw sockets: a body that stalls
(408, and SIGTERM still ends the server), a drain bounded by --drain-timeout, a second signal that
stops it at once, idle and trickling connections closed, bodies that would crash a parser, lone
surrogates, an unknown model name, and the optional API key."""

from __future__ import annotations

import json
import logging
import signal
import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest
from serve_helpers import running, start_server, wait_ready

from distilbert_onnx.serving.server import build_app


def _stalled_body(url: str, path: str = "/predict") -> socket.socket:
    """A client that sends the headers and part of a body it announced, then nothing (once the
    server is ready, so that the body is being read)."""
    with httpx.Client(timeout=30) as client:
        wait_ready(client, url)
    address = urlsplit(url)
    sock = socket.create_connection((address.hostname, address.port), timeout=60)
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 "Content-Length: 1000\r\n\r\n{\"inputs\": \"half a bo".encode())
    return sock


def _answer(sock: socket.socket) -> bytes:
    """What the server sent before it closed the connection (a reset counts as closed)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def _stop(process, *signals, timeout: float = 30) -> str:
    for sig in signals:
        process.send_signal(sig)
        time.sleep(0.5)
    process.wait(timeout=timeout)
    return process.stderr.read()


@pytest.mark.slow
def test_a_stalled_body_gets_408_and_sigterm_still_ends_the_server(exported):
    process, url = start_server(str(exported["text-classification"]), "--client-timeout", "1")
    try:
        sock = _stalled_body(url)
        time.sleep(0.5)  # the request is being read
        process.send_signal(signal.SIGTERM)
        answer = _answer(sock)
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
    assert answer.startswith(b"HTTP/1.1 408") and b'"type":"timeout"' in answer
    log = process.stderr.read()
    assert "POST /predict 408" in log and "Traceback" not in log


@pytest.mark.slow
@pytest.mark.parametrize("second", [signal.SIGTERM, signal.SIGINT])
def test_a_second_signal_stops_at_once_and_says_what_was_cut_off(exported, second):
    process, url = start_server(str(exported["text-classification"]))  # the stalled body would hold it 25 s
    try:
        sock = _stalled_body(url)
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        time.sleep(1)
        assert process.poll() is None  # draining: waiting for the stalled request
        log = _stop(process, second, timeout=20)
        answer = _answer(sock)
    finally:
        process.kill()
    assert process.returncode == 0
    assert "a second signal: stopping now" in log
    assert "cut off at shutdown: POST /predict from 127.0.0.1" in log
    assert "Traceback" not in log
    assert answer == b"" or answer.startswith(b"HTTP/1.1 503")


@pytest.mark.slow
def test_the_drain_is_bounded_by_drain_timeout(exported):
    process, url = start_server(str(exported["text-classification"]), "--client-timeout", "300",
                                "--drain-timeout", "1")
    try:
        sock = _stalled_body(url)
        time.sleep(0.5)
        log = _stop(process, signal.SIGTERM, timeout=20)
        answer = _answer(sock)
    finally:
        process.kill()
    assert process.returncode == 0 and "Traceback" not in log
    assert "cut off at shutdown: POST /predict" in log
    assert answer.startswith(b"HTTP/1.1 503") and b"shutting down" in answer


@pytest.mark.slow
def test_idle_and_trickling_connections_are_closed(exported):
    process, url = start_server(str(exported["text-classification"]), "--client-timeout", "1")
    address = urlsplit(url)
    try:
        idle = [socket.create_connection((address.hostname, address.port), timeout=30) for _ in range(300)]
        trickling = socket.create_connection((address.hostname, address.port), timeout=30)
        closed_by_server = False
        for byte in b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
            try:
                trickling.sendall(bytes([byte]))
            except OSError:
                closed_by_server = True
                break
            time.sleep(0.1)
        for sock in idle:
            assert sock.recv(1) == b""  # closed by the server, not left open for good
        assert closed_by_server or trickling.recv(1) == b""
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200  # still serving
        log = _stop(process, signal.SIGTERM)
    finally:
        process.kill()
    assert "sent no complete request for 1 s" in log and "Traceback" not in log


@pytest.mark.slow
def test_huge_headers_are_refused_and_the_server_stays_up(exported):
    process, url = start_server(str(exported["text-classification"]))
    address = urlsplit(url)
    try:
        sock = socket.create_connection((address.hostname, address.port), timeout=30)
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n")
        answer = _answer(sock)
        assert answer == b"" or answer.split(b" ")[1][:1] == b"4"
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200
        log = _stop(process, signal.SIGTERM)
    finally:
        process.kill()
    assert "Traceback" not in log


# --- bodies -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(exported):
    app = build_app({"tc": exported["text-classification"], "fe": exported["feature-extraction"]})
    with running(app) as url, httpx.Client(timeout=60) as client:
        wait_ready(client, url)
        yield client, url


@pytest.mark.parametrize("body, status, message", [
    ("[" * 100_000 + "]" * 100_000, 400, "nests arrays or objects too deeply"),
    ('{"inputs": "' + "x" + '", "parameters": {"top_k": ' + "9" * 5000 + "}}", 400, "more than 4,300 digits"),
    ('{"inputs": "a \\ud800 b"}', 422, "lone surrogate (\\ud800)"),
    ('{"inputs": ["fine", "\\udfff"]}', 422, "lone surrogate (\\udfff)"),
    ('{"inputs": "x", "parameters": {"top_k": ' + "9" * 4000 + "}}", 200, ""),
])
def test_hostile_bodies_are_client_errors_without_a_traceback(served, caplog, body, status, message):
    client, url = served
    with caplog.at_level(logging.INFO, logger="distilbert_onnx"):
        response = client.post(f"{url}/models/tc/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert message in response.json().get("error", "") if message else True
    assert not any(record.exc_info or record.levelno >= logging.ERROR for record in caplog.records)


def test_a_surrogate_pair_is_a_character_not_an_error(served):
    client, url = served
    response = client.post(f"{url}/models/tc/predict", content='{"inputs": "smile \\ud83d\\ude00"}',
                           headers={"content-type": "application/json"})
    assert response.status_code == 200


def test_embeddings_refuse_a_model_they_do_not_serve(served):
    client, url = served
    response = client.post(f"{url}/models/fe/v1/embeddings", json={"input": "a text", "model": "text-embedding-3-large"})
    assert response.status_code == 404
    assert response.json()["type"] == "model_not_found" and "'fe'" in response.json()["error"]
    assert client.post(f"{url}/models/fe/v1/embeddings", json={"input": "a text", "model": "fe"}).status_code == 200
    assert client.post(f"{url}/models/fe/v1/embeddings", json={"input": "a text"}).status_code == 200


# --- API key ------------------------------------------------------------------------------------


def test_an_api_key_guards_every_route(exported):
    app = build_app(exported["text-classification"], api_key="s3cret-key")
    with running(app) as url, httpx.Client(timeout=60) as client:
        good = {"Authorization": "Bearer s3cret-key"}
        deadline = time.monotonic() + 30
        while client.get(f"{url}/health", headers=good).status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        for method, path in [("GET", "/health"), ("GET", "/metrics"), ("GET", "/info"), ("POST", "/predict"),
                             ("GET", "/openapi.json"), ("GET", "/nowhere")]:
            for headers in [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-key"},
                            {"Authorization": "Basic s3cret-key"}]:
                response = client.request(method, f"{url}{path}", headers=headers, json={"inputs": "x"})
                assert response.status_code == 401, (path, headers)
                assert response.json()["type"] == "unauthorized"
                assert response.headers["www-authenticate"].startswith("Bearer")
        assert client.post(f"{url}/predict", json={"inputs": "x"}, headers=good).status_code == 200
        assert client.get(f"{url}/metrics", headers={"authorization": "bearer s3cret-key"}).status_code == 200


@pytest.mark.slow
def test_the_api_key_comes_from_the_environment_too(exported):
    process, url = start_server(str(exported["text-classification"]), env={"DISTILBERT_ONNX_API_KEY": "from-env"})
    try:
        assert httpx.get(f"{url}/health", timeout=10).status_code == 401
        response = httpx.post(f"{url}/predict", json={"inputs": "x"}, headers={"Authorization": "Bearer from-env"},
                              timeout=30)
        assert response.status_code == 200
        log = _stop(process, signal.SIGTERM)
    finally:
        process.kill()
    assert "from-env" not in log  # the key is never logged
