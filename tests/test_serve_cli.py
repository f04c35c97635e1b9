"""`distilbert-onnx serve` as a real process: two folders at once, SIGTERM with requests in flight
(all answered, exit 0), one log line per request; and its one-line errors."""

from __future__ import annotations

import asyncio
import re
import signal
import socket

import httpx
import pytest
from runtime_helpers import MEDIUM_TEXT

from serve_helpers import start_server

@pytest.mark.slow
def test_sigterm_answers_every_request_in_flight_then_exits_0(exported):
    folders = [exported["text-classification"], exported["feature-extraction"]]
    process, url = start_server(*map(str, folders), "--max-batch-tokens", "1")
    try:
        async def load_and_stop():
            async with httpx.AsyncClient(timeout=60) as client:
                calls = [client.post(f"{url}/models/text-classification/predict", json={"inputs": [MEDIUM_TEXT] * 256})
                         for _ in range(3)]
                calls.append(client.post(f"{url}/models/feature-extraction/v1/embeddings", json={"input": [MEDIUM_TEXT] * 256}))
                pending = asyncio.gather(*calls)
                # 1024 rows, one model call each (batching off): signal once rows are queued, while they run.
                while not pending.done() and "distilbert_onnx_queue_rows{model=" not in await _queued(client, url):
                    await asyncio.sleep(0.01)
                assert not pending.done()
                process.send_signal(signal.SIGTERM)
                return await pending

        responses = asyncio.run(load_and_stop())
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()
    assert [response.status_code for response in responses] == [200] * 4
    assert [len(response.json()) for response in responses[:3]] == [256] * 3
    assert len(responses[3].json()["data"]) == 256
    log = process.stderr.read()
    assert len(re.findall(r"INFO POST /models/text-classification/predict 200 [\d.]+ ms", log)) == 3
    assert "Traceback" not in log
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health")


async def _queued(client, url: str) -> str:
    """The queue-depth lines of /metrics that show rows waiting (a value other than 0.0)."""
    metrics = (await client.get(f"{url}/metrics")).text
    return "\n".join(line for line in metrics.splitlines()
                     if line.startswith("distilbert_onnx_queue_rows{") and not line.endswith(" 0.0"))


def test_an_occupied_port_is_one_error_line(cli, exported):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("serve", str(exported["text-classification"]), "--port", str(port))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"Error: cannot listen on 127.0.0.1:{port}" in result.stderr


def test_two_folders_of_one_name_are_one_error_line(cli, exported):
    folder = str(exported["text-classification"])
    result = cli("serve", folder, folder + "/")
    assert result.exit_code == 1
    assert "Error: two folders are named 'text-classification'" in result.stderr
