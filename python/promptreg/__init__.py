"""promptreg: the prompt registry of a git repository, in Python.

- ``Registry(path)``: a clone of the prompts repository, read and written in process (the Rust
  library, no server);
- ``Client(url)`` and ``AsyncClient(url)``: ``promptreg serve``, with versions cached for good,
  defaults and labels revalidated by ETag and the event stream, and the last good copy or an
  export bundle when the server cannot be reached;
- ``Prompt``: one version of a prompt, whichever gave it: ``render(**values)`` (``compile``),
  ``request(**values)``; ``Prompt.get_default(slug=...)`` and ``Prompt.set_default(slug=...,
  version=...)`` on the registry ``PROMPTREG_REGISTRY`` names, as Athina's client does;
- exceptions, one class per kind of error, all ``PromptregError``.
"""

from ._client import AsyncClient, Client
from ._errors import (
    BadReference,
    Conflict,
    GitError,
    InvalidPrompt,
    IoError,
    MissingVariables,
    NoHistory,
    NotFound,
    PromptregError,
    Refused,
    RenderLimit,
    Stale,
    TemplateError,
    Unauthorized,
    Unavailable,
    UnknownPrompt,
    Unreadable,
    Unsupported,
    UnusedVariables,
    UsageError,
    WrongType,
)
from ._prompt import Prompt, Variable
from ._registry import Registry

__version__ = "0.1.0"

__all__ = [
    "AsyncClient", "BadReference", "Client", "Conflict", "GitError", "InvalidPrompt", "IoError",
    "MissingVariables", "NoHistory", "NotFound", "Prompt", "PromptregError", "Refused", "Registry",
    "RenderLimit", "Stale", "TemplateError", "Unauthorized", "Unavailable", "UnknownPrompt",
    "Unreadable", "Unsupported", "UnusedVariables", "UsageError", "Variable", "WrongType",
]
