"""Hermetic registries and real servers for the package's tests.

Repositories are made with the ``git`` command under a fixed identity and fixed dates, with no
user or system configuration; servers are the ``promptreg`` binary (``PROMPTREG_BIN``) on an
ephemeral loopback port.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Dict, Iterator

import pytest

GREET = """name: Greeting
model: openai/gpt-4o-mini
modelParameters:
  temperature: 0.2
variables:
  customer:
    type: string
    required: true
  count:
    type: integer
    default: 2
messages:
  - role: system
    content: You greet customers of Acme. VERSION
  - role: user
    content: "Greet {{ customer }} {{ count }} times."
testData:
  - customer: Ada
tags: [support]
"""


def greet(version: str) -> str:
    return GREET.replace("VERSION", version)


class Repo:
    """A git repository in a temporary folder, committed to with fixed identities and dates."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.mkdir(parents=True, exist_ok=True)
        self.minute = 0
        self.git("init", "--quiet", "--initial-branch=main")
        self.git("config", "user.name", "Test Author")
        self.git("config", "user.email", "author@example.com")

    def env(self) -> Dict[str, str]:
        date = f"2026-01-01T00:{self.minute:02d}:00Z"
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_DATE": date,
            "GIT_COMMITTER_DATE": date,
            "HOME": str(self.path),
        }

    def git(self, *args: str) -> str:
        return subprocess.run(["git", "-C", str(self.path), *args], check=True, capture_output=True,
                              text=True, env=self.env()).stdout

    def write(self, rel: str, text: str) -> None:
        path = self.path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    def commit(self, message: str) -> str:
        self.minute += 1
        self.git("add", "-A")
        self.git("commit", "--quiet", "-m", message)
        return self.git("rev-parse", "HEAD").strip()


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    """``greet`` at versions 1 to 3 (default pinned to 2, label ``prod`` on 1)."""
    r = Repo(tmp_path / "registry")
    r.write("greet.prompt.yaml", greet("Be brief."))
    r.commit("Add greet")
    r.write("greet.prompt.yaml", greet("Be warm."))
    r.commit("greet: warmer")
    r.write("greet.prompt.yaml", greet("Be warm and brief."))
    r.commit("greet: warm and brief")
    r.write("defaults.yaml", "defaults:\n  greet: 2\nlabels:\n  prod:\n    greet: 1\n")
    r.commit("Pin greet to 2, prod to 1")
    return r


def binary() -> str:
    path = os.environ.get("PROMPTREG_BIN")
    if not path:
        pytest.skip("PROMPTREG_BIN is not set: the server tests need the promptreg binary")
    return path


class Server:
    """``promptreg serve`` on an ephemeral loopback port; stopped by ``stop()``."""

    def __init__(self, root: Path, *args: str) -> None:
        self.process = subprocess.Popen(
            [binary(), "-C", str(root), "serve", "--listen", "127.0.0.1:0", "--no-ui", *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("PROMPTREG_")},
        )
        assert self.process.stderr is not None
        first = self.process.stderr.readline().strip()
        assert first.startswith("listening on "), first
        self.url = first[len("listening on "):]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture
def server(repo: Repo) -> Iterator[Server]:
    s = Server(repo.path)
    yield s
    s.stop()


def wait_until(check, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.05)
