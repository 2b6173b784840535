"""A prompt at one version, the same object whether it came from a clone or from a server."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple


@dataclass(frozen=True)
class Variable:
    """A declared variable: its type, whether it must be given, its default."""

    name: str
    type: str
    required: bool
    default: Any = None
    description: Optional[str] = None


@dataclass
class Prompt:
    """One version of a prompt: what its file says, and where the version comes from.

    ``render(**values)`` (or ``compile``, as Langfuse names it) returns the rendered messages;
    ``request(**values)`` the body of an OpenAI-compatible chat-completions request.
    """

    id: str
    version: Optional[int]
    commit: str
    file: str
    source: str
    model: Optional[str]
    model_parameters: Dict[str, Any]
    variables: Dict[str, Variable]
    messages: Optional[List[Dict[str, str]]]
    template: Optional[str]
    test_data: List[Dict[str, Any]]
    name: Optional[str] = None
    description: Optional[str] = None
    tags: List[str] = field(default_factory=list)
    message: Optional[str] = None
    author: Optional[str] = None
    email: Optional[str] = None
    time: Optional[str] = None
    is_default: bool = False
    labels: List[str] = field(default_factory=list)
    #: True when the prompt was not answered by the registry now: the last good copy a client
    #: kept, or its fallback (``origin`` says which).
    is_fallback: bool = False
    #: ``"registry"`` (a clone), ``"server"``, ``"cache"`` (the last good copy of a server's
    #: answer) or ``"fallback"`` (an export bundle or the dict given as ``fallback``).
    origin: str = "registry"
    _renderer: Optional[Callable[["Prompt", Mapping[str, Any]], Dict[str, Any]]] = field(
        default=None, repr=False, compare=False
    )

    @classmethod
    def from_document(
        cls,
        doc: Mapping[str, Any],
        renderer: Optional[Callable[["Prompt", Mapping[str, Any]], Dict[str, Any]]] = None,
        origin: str = "registry",
    ) -> "Prompt":
        """A prompt from its document, as ``GET /v1/prompts/ID`` answers it."""
        variables = {
            v["name"]: Variable(
                name=v["name"],
                type=v.get("type", "string"),
                required=bool(v.get("required", False)),
                default=v.get("default"),
                description=v.get("description"),
            )
            for v in doc.get("variables") or []
        }
        messages = doc.get("messages")
        return cls(
            id=doc["id"],
            version=doc.get("version"),
            commit=doc.get("commit", ""),
            file=doc.get("file", ""),
            source=doc.get("source", ""),
            model=doc.get("model"),
            model_parameters=dict(doc.get("modelParameters") or {}),
            variables=variables,
            messages=[{"role": m["role"], "content": m["content"]} for m in messages]
            if messages is not None
            else None,
            template=doc.get("template"),
            test_data=list(doc.get("testData") or []),
            name=doc.get("name"),
            description=doc.get("description"),
            tags=list(doc.get("tags") or []),
            message=doc.get("message"),
            author=doc.get("author"),
            email=doc.get("email"),
            time=doc.get("time"),
            is_default=bool(doc.get("default", False)),
            labels=list(doc.get("labels") or []),
            is_fallback=origin in ("cache", "fallback"),
            origin=origin,
            _renderer=renderer,
        )

    @property
    def reference(self) -> str:
        """``ID@N`` (or ``ID@COMMIT`` where versions have no numbers)."""
        return f"{self.id}@{self.version if self.version is not None else self.commit}"

    def _rendered(self, values: Mapping[str, Any]) -> Dict[str, Any]:
        if self._renderer is None:
            raise RuntimeError("this prompt was built without a renderer")
        rendered = self._renderer(self, values)
        _record_on_span(self)
        return rendered

    def render(self, **values: Any) -> List[Dict[str, str]]:
        """The rendered messages (a single template is one user message)."""
        return list(self._rendered(values)["messages"])

    def compile(self, **values: Any) -> List[Dict[str, str]]:
        """``render``, under Langfuse's name."""
        return self.render(**values)

    def request(self, **values: Any) -> Dict[str, Any]:
        """The chat-completions body: pass it to ``openai.chat.completions.create(**body)``."""
        rendered = self._rendered(values)
        body = rendered.get("request")
        if body is None:
            raise ValueError(
                f"`{self.id}` names no model: add `model:` to its file to make a request"
            )
        return dict(body)


def _selector(label: Optional[str], version: Optional[int], commit: Optional[str]) -> Tuple[str, Optional[str]]:
    """Which version a call names: ``("default", None)``, or ``("label"|"version"|"commit",
    value)``; naming more than one is an error."""
    chosen = [(k, v) for k, v in (("label", label), ("version", version), ("commit", commit)) if v is not None]
    if len(chosen) > 1:
        raise ValueError("name the version once: one of label, version and commit")
    if not chosen:
        return "default", None
    kind, value = chosen[0]
    return kind, str(value)


def _from_environment() -> Any:
    """The registry ``PROMPTREG_REGISTRY`` names: a server's URL (a ``Client``, with
    ``PROMPTREG_TOKEN``) or a clone's path (a ``Registry``; the current folder when unset)."""
    import os

    where = os.environ.get("PROMPTREG_REGISTRY", ".")
    if where.startswith(("http://", "https://")):
        from ._client import Client

        return Client(where, token=os.environ.get("PROMPTREG_TOKEN"))
    from ._registry import Registry

    return Registry(where)


def _get_default(cls: Any, slug: str) -> "Prompt":
    """The default version of prompt ``slug``, from the registry the environment names
    (``PROMPTREG_REGISTRY``): Athina's ``Prompt.get_default(slug=...)``."""
    return _from_environment().get(slug)


def _set_default(cls: Any, slug: str, version: int) -> Any:
    """Makes ``version`` the default of prompt ``slug`` (a commit to ``defaults.yaml``), in the
    registry the environment names: Athina's ``Prompt.set_default(slug=..., version=...)``."""
    return _from_environment().set_default(slug, version)


Prompt.get_default = classmethod(_get_default)  # type: ignore[attr-defined]
Prompt.set_default = classmethod(_set_default)  # type: ignore[attr-defined]


def _record_on_span(prompt: Prompt) -> None:
    """Records the prompt's id, version and commit on the current OpenTelemetry span, when
    OpenTelemetry is installed and a span is recording: ``promptreg.prompt.id``,
    ``promptreg.prompt.version``, ``promptreg.prompt.commit`` (the GenAI semantic conventions
    have no names for a prompt's identity) and the GenAI conventions' ``gen_ai.request.model``
    for the model the prompt names."""
    try:
        from opentelemetry import trace  # type: ignore
    except ImportError:
        return
    span = trace.get_current_span()
    if span is None or not span.is_recording():
        return
    span.set_attribute("promptreg.prompt.id", prompt.id)
    if prompt.version is not None:
        span.set_attribute("promptreg.prompt.version", prompt.version)
    span.set_attribute("promptreg.prompt.commit", prompt.commit)
    if prompt.model:
        span.set_attribute("gen_ai.request.model", prompt.model)
