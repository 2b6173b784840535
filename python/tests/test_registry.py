"""The package embedded on a clone: reads, renders, writes and errors, through the Rust library."""

from __future__ import annotations

import threading

import pytest

import promptreg
from promptreg import Registry

from conftest import greet


def test_a_prompt_at_its_default_label_version_and_commit(repo):
    registry = Registry(repo.path)
    prompt = registry.get("greet")
    assert (prompt.id, prompt.version, prompt.is_default, prompt.labels) == ("greet", 2, True, [])
    assert prompt.message.strip() == "greet: warmer" and prompt.author == "Test Author"
    assert prompt.time.startswith("2026-01-01T00:02:00")
    assert prompt.model == "openai/gpt-4o-mini"
    assert prompt.model_parameters == {"temperature": 0.2}
    assert prompt.messages[0] == {"role": "system", "content": "You greet customers of Acme. Be warm."}
    assert prompt.variables["count"].type == "integer" and prompt.variables["count"].default == 2
    assert prompt.variables["customer"].required is True
    assert prompt.test_data == [{"customer": "Ada"}]
    assert prompt.source == greet("Be warm.")
    assert prompt.origin == "registry" and prompt.is_fallback is False
    assert registry.get("greet", label="prod").version == 1
    assert registry.get("greet", label="prod").labels == ["prod"]
    assert registry.get("greet", version=3).messages[0]["content"].endswith("Be warm and brief.")
    assert registry.get("greet@latest").version == 3
    first = repo.git("rev-list", "--max-parents=0", "HEAD").strip()
    assert registry.get("greet", commit=first[:10]).version == 1
    with pytest.raises(ValueError):
        registry.get("greet", label="prod", version=1)


def test_render_compile_and_the_chat_request(repo):
    prompt = Registry(repo.path).get("greet")
    messages = prompt.render(customer="Lin")
    assert messages == [
        {"role": "system", "content": "You greet customers of Acme. Be warm."},
        {"role": "user", "content": "Greet Lin 2 times."},
    ]
    assert prompt.compile(customer="Lin", count=5)[1]["content"] == "Greet Lin 5 times."
    body = prompt.request(customer="Lin")
    assert body["model"] == "openai/gpt-4o-mini" and body["temperature"] == 0.2
    assert body["messages"] == messages


def test_list_versions_and_validate(repo):
    registry = Registry(repo.path)
    rows = registry.list()
    assert [(r["id"], r["versions"], r["default"], r["labels"]) for r in rows] == [("greet", 3, 2, {"prod": 1})]
    versions = registry.versions("greet")
    assert [v["version"] for v in versions] == [3, 2, 1]
    assert versions[1]["default"] is True and versions[2]["labels"] == ["prod"]
    assert versions[0]["message"].strip() == "greet: warm and brief"
    assert registry.validate() == []


def test_errors_are_classes_with_hints_and_findings(repo):
    registry = Registry(repo.path)
    with pytest.raises(promptreg.UnknownPrompt) as err:
        registry.get("nope")
    assert "nope" in str(err.value)
    with pytest.raises(promptreg.BadReference) as err:
        registry.get("greet", version=9)
    assert err.value.hint == "it has versions 1 to 3; labels: prod (v1)"
    with pytest.raises(promptreg.BadReference):
        registry.get("greet@a@b")
    prompt = registry.get("greet")
    with pytest.raises(promptreg.MissingVariables) as err:
        prompt.render()
    assert "customer" in err.value.message
    with pytest.raises(promptreg.WrongType):
        prompt.render(customer="Ada", count="many")
    with pytest.raises(promptreg.InvalidPrompt) as err:
        registry.commit("greet", "messages:\n  - role: user\n    content: \"{{ nope }\"\n", "broken")
    finding = err.value.findings[0]
    assert finding["file"] == "greet.prompt.yaml" and finding["line"] == 3
    assert isinstance(err.value, promptreg.PromptregError)
    assert registry.get("greet@latest").version == 3, "nothing was committed"


def test_writes_are_one_commit_each(repo):
    registry = Registry(repo.path)
    made = registry.commit("greet", greet("Be kind."), "greet: kind")
    assert made["version"] == 4 and made["message"] == "greet: kind"
    assert repo.git("log", "-1", "--format=%s").strip() == "greet: kind"
    registry.set_default("greet", 4)
    assert registry.get("greet").version == 4
    registry.set_label("prod", "greet", 3, message="ship v3")
    assert registry.get("greet", label="prod").version == 3
    assert repo.git("log", "-1", "--format=%s").strip() == "ship v3"
    registry.commit("hello", "template: Hello {{ name }}\n", "Add hello")
    registry.delete("hello")
    with pytest.raises(promptreg.BadReference) as err:
        registry.get("hello")
    assert "deleted" in err.value.message
    assert registry.get("hello", version=1).template == "Hello {{ name }}"
    assert repo.git("status", "--porcelain").strip() == ""


def test_threads_share_one_registry(repo):
    registry = Registry(repo.path)
    prompt = registry.get("greet", version=3)
    results = []
    errors = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                results.append(prompt.render(customer=f"c{n}-{i}")[1]["content"])
                registry.get("greet", label="prod")
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 160 and "Greet c7-19 2 times." in results


def test_athina_calls_work_on_the_registry_the_environment_names(repo, monkeypatch):
    monkeypatch.setenv("PROMPTREG_REGISTRY", str(repo.path))
    from promptreg import Prompt

    assert Prompt.get_default(slug="greet").version == 2
    Prompt.set_default(slug="greet", version=3)
    assert Prompt.get_default(slug="greet").version == 3
    assert repo.git("show", "HEAD:defaults.yaml").count("greet: 3") == 1


def test_a_render_is_recorded_on_the_current_span(repo):
    pytest.importorskip("opentelemetry.trace")
    sdk = pytest.importorskip("opentelemetry.sdk.trace")
    export = pytest.importorskip("opentelemetry.sdk.trace.export")
    memory = pytest.importorskip("opentelemetry.sdk.trace.export.in_memory_span_exporter")
    exporter = memory.InMemorySpanExporter()
    provider = sdk.TracerProvider()
    provider.add_span_processor(export.SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    prompt = Registry(repo.path).get("greet", label="prod")
    with tracer.start_as_current_span("answer"):
        prompt.render(customer="Ada")
    (span,) = exporter.get_finished_spans()
    assert span.attributes["promptreg.prompt.id"] == "greet"
    assert span.attributes["promptreg.prompt.version"] == 1
    assert span.attributes["promptreg.prompt.commit"] == prompt.commit
    assert span.attributes["gen_ai.request.model"] == "openai/gpt-4o-mini"
