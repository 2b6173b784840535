"""Exceptions, one class per kind of error the registry reports, for clones and servers alike.

Each carries the registry's message (``str(err)``), its ``hint`` (what to do, or ``None``) and
its ``findings``: the places in the prompt file, each a dict with ``file``, ``line``,
``column``, ``code``, ``severity`` and ``message``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Type


class PromptregError(Exception):
    """Any error of the registry."""

    kind = "error"

    def __init__(
        self,
        message: str,
        hint: Optional[str] = None,
        findings: Optional[List[Dict[str, Any]]] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.findings = list(findings or [])

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"


def _kind(name: str, kind: str, doc: str, base: Type[PromptregError] = PromptregError) -> Type[PromptregError]:
    return type(name, (base,), {"kind": kind, "__doc__": doc})


UnknownPrompt = _kind("UnknownPrompt", "unknown-prompt", "No prompt has this id.")
BadReference = _kind("BadReference", "bad-reference", "The reference names no version (`ID@N`, `ID@LABEL`, `ID@COMMIT`).")
NotFound = _kind("NotFound", "not-found", "The version, label or commit does not exist.")
InvalidPrompt = _kind("InvalidPrompt", "invalid", "The prompt file is not valid; `findings` says where.")
MissingVariables = _kind("MissingVariables", "missing-variables", "Required variables were not given.")
WrongType = _kind("WrongType", "wrong-type", "A value does not have its variable's type.")
UnusedVariables = _kind("UnusedVariables", "unused-variables", "Values were given for names the prompt does not use.")
TemplateError = _kind("TemplateError", "template", "The template failed to render.")
RenderLimit = _kind("RenderLimit", "render-limit", "The render went over its limits.")
Conflict = _kind("Conflict", "conflict", "What the write is about changed meanwhile.")
Stale = _kind("Stale", "stale", "The version given as a precondition is no longer the current one.")
Refused = _kind("Refused", "refused", "The registry refused the change (it would lose work, or it is not allowed).")
NoHistory = _kind("NoHistory", "no-history", "Versions need git history (the registry is not in a repository, or it is shallow).")
UsageError = _kind("UsageError", "usage", "The request was not well formed.")
Unsupported = _kind("Unsupported", "unsupported", "The registry does not support this.")
GitError = _kind("GitError", "git", "The git repository could not be read or written.")
IoError = _kind("IoError", "io", "A file could not be read or written.")
Unreadable = _kind("Unreadable", "unreadable", "A file could not be read as text.")
Unavailable = _kind("Unavailable", "unavailable", "The server could not be reached and no copy of the prompt was at hand.")
Unauthorized = _kind("Unauthorized", "unauthorized", "The server needs a token, or a token with more scopes.")

_BY_KIND: Dict[str, Type[PromptregError]] = {
    cls.kind: cls
    for cls in [
        UnknownPrompt, BadReference, NotFound, InvalidPrompt, MissingVariables, WrongType,
        UnusedVariables, TemplateError, RenderLimit, Conflict, Stale, Refused, NoHistory,
        UsageError, Unsupported, GitError, IoError, Unreadable, Unavailable, Unauthorized,
    ]
}
_BY_KIND["forbidden"] = Unauthorized


def from_kind(
    kind: str,
    message: str,
    hint: Optional[str] = None,
    findings: Optional[List[Dict[str, Any]]] = None,
) -> PromptregError:
    """The exception for an error of kind ``kind`` (``PromptregError`` for kinds without a
    class of their own)."""
    return _BY_KIND.get(kind, PromptregError)(message, hint, findings)


def from_problem(problem: Dict[str, Any]) -> PromptregError:
    """The exception for a server's problem+json answer."""
    kind = str(problem.get("type", "")).rsplit(":", 1)[-1]
    return from_kind(
        kind,
        str(problem.get("detail") or problem.get("title") or "the server refused the request"),
        problem.get("hint"),
        problem.get("diagnostics"),
    )


__all__ = ["PromptregError", "from_kind", "from_problem"] + [c.__name__ for c in set(_BY_KIND.values())]
