"""The package as a client of a real ``promptreg serve`` on loopback: caching, revalidation,
events, the last good copy and the fallback, async, and writes."""

from __future__ import annotations

import asyncio
import json
import subprocess

import pytest

import promptreg
from promptreg import AsyncClient, Client

from conftest import Server, binary, greet, wait_until


def statuses(client: Client) -> list:
    seen = []
    client._http.event_hooks["response"].append(lambda r: seen.append((r.request.method, r.status_code)))
    return seen


def test_the_same_prompt_as_a_clone_gives(repo, server):
    with Client(server.url) as client:
        prompt = client.get("greet")
        embedded = promptreg.Registry(repo.path).get("greet")
        assert (prompt.id, prompt.version, prompt.commit, prompt.source) == (
            embedded.id, embedded.version, embedded.commit, embedded.source)
        assert prompt.is_default and prompt.origin == "server" and not prompt.is_fallback
        assert prompt.render(customer="Lin")[1]["content"] == "Greet Lin 2 times."
        assert prompt.request(customer="Lin")["model"] == "openai/gpt-4o-mini"
        assert client.get("greet", label="prod").version == 1
        with pytest.raises(promptreg.UnknownPrompt):
            client.get("nope")
        with pytest.raises(promptreg.MissingVariables):
            prompt.render()


def test_versions_are_cached_for_good_and_defaults_revalidated_by_etag(repo, server):
    with Client(server.url, cache_ttl_seconds=0) as client:
        seen = statuses(client)
        client.get("greet", version=3)
        client.get("greet", version=3)
        assert seen == [("GET", 200)], "a version is asked for once"
        client.get("greet")
        client.get("greet")
        assert seen[1:] == [("GET", 200), ("GET", 304)], "the default is revalidated, unchanged"
    with Client(server.url, cache_ttl_seconds=60) as client:
        seen = statuses(client)
        client.get("greet")
        client.get("greet")
        assert seen == [("GET", 200)], "within the TTL nothing is asked"


def test_events_make_a_moved_default_visible_at_once(repo, server):
    with Client(server.url, cache_ttl_seconds=3600, listen=True) as client:
        assert client.get("greet").version == 2
        # The listener is connected before the move.
        import time
        time.sleep(0.5)
        repo.write("defaults.yaml", "defaults:\n  greet: 3\nlabels:\n  prod:\n    greet: 1\n")
        repo.commit("Move greet to 3")
        wait_until(lambda: client.get("greet").version == 3)


def test_a_server_that_is_down_serves_the_last_good_copy_then_the_fallback(repo, tmp_path):
    server = Server(repo.path)
    export = tmp_path / "export"
    subprocess.run([binary(), "-C", str(repo.path), "export", "--out", str(export)], check=True,
                   capture_output=True)
    client = Client(server.url, cache_ttl_seconds=0, retries=1, timeout=1.0, fallback=export)
    assert client.get("greet").origin == "server"
    server.stop()
    copy = client.get("greet")
    assert (copy.version, copy.origin, copy.is_fallback) == (2, "cache", True)
    # The copy renders on its own, from its text.
    assert copy.render(customer="Lin")[1]["content"] == "Greet Lin 2 times."
    prod = client.get("greet", label="prod")
    assert (prod.version, prod.origin, prod.is_fallback) == (1, "fallback", True)
    with pytest.raises(promptreg.Unavailable):
        client.get("unknown")
    client.close()
    # A bundle given as a dict works the same.
    bundle = json.loads((export / "bundle.json").read_text())
    with Client(server.url, retries=0, timeout=1.0, fallback=bundle) as other:
        assert other.get("greet").version == 2 and other.get("greet").origin == "fallback"


def test_the_async_client(repo, server):
    async def main():
        async with AsyncClient(server.url) as client:
            prompt = await client.get("greet", label="prod")
            rendered = await client.render(prompt, customer="Ada")
            return prompt.version, rendered["messages"][1]["content"], prompt.render(customer="Bo")[1]["content"]

    assert asyncio.run(main()) == (1, "Greet Ada 2 times.", "Greet Bo 2 times.")


def test_writes_through_a_server_and_athina_calls_against_it(repo, tmp_path, monkeypatch):
    auth = tmp_path / "auth.yaml"
    auth.write_text("tokens:\n  - name: app\n    token: app-secret\n    email: app@example.com\n    scopes: [read, write]\n")
    server = Server(repo.path, "--allow-writes", "--auth", str(auth))
    try:
        with Client(server.url, token="app-secret") as client:
            made = client.commit("greet", greet("Be kind."), "greet: kind")
            assert made["version"] == 4
            client.set_label("prod", "greet", 4)
            assert client.get("greet", label="prod").version == 4
        with pytest.raises(promptreg.Unauthorized) as err:
            Client(server.url).get("greet")
        assert "bearer token" in err.value.message
        with pytest.raises(promptreg.Unauthorized):
            Client(server.url, token="wrong").get("greet")
        monkeypatch.setenv("PROMPTREG_REGISTRY", server.url)
        monkeypatch.setenv("PROMPTREG_TOKEN", "app-secret")
        from promptreg import Prompt

        Prompt.set_default(slug="greet", version=4)
        assert Prompt.get_default(slug="greet").version == 4
        assert repo.git("log", "-1", "--format=%an|%s").strip().startswith("app|")
    finally:
        server.stop()
