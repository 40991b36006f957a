"""A ``bentoml serve`` subprocess on a free local port, for the end-to-end tests and the
throughput benchmark: started, awaited on ``/readyz``, always stopped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"bentoml serve exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url}/readyz not ready after {timeout:.0f} s:\n{log.read_text()[-4000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group (the server and its workers), SIGKILL if it
    lingers."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@dataclass(frozen=True)
class Server:
    url: str  # base URL
    pid: int  # the server's process: its workers are its descendants


@contextmanager
def serving(
    target: str, log: Path, env: Mapping[str, str] | None = None, cwd: Path | None = None, timeout: float = 180
) -> Iterator[Server]:
    """``bentoml serve target`` (a Bento tag or ``module:Service``) on 127.0.0.1, yielded
    once ready; its output goes to ``log``."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "bentoml", "serve", target, "--host", "127.0.0.1", "--port", str(port)]
    environ = {**os.environ, "BENTOML_DO_NOT_TRACK": "true", **(env or {})}
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=environ, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_ready(url, process, log, timeout)
        yield Server(url, process.pid)
    finally:
        stop(process)
