"""A registry read and written in process, from a clone of the prompts repository."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Mapping, Optional, Union

from . import _promptreg
from ._prompt import Prompt, _selector


def _reference(id: str, label: Optional[str], version: Optional[int], commit: Optional[str]) -> str:
    _, value = _selector(label, version, commit)
    if "@" in id or value is None:
        return id
    return f"{id}@{value}"


class Registry:
    """The registry in a clone at ``path`` (its root folder, or any folder inside it), read at
    ``rev`` (``HEAD`` when not given: the committed state, never the working copy).

    Reads and renders run in Rust with the GIL released, so threads share one ``Registry``.
    Writes make one commit each, as the command line does (``promptreg commit``,
    ``set-default --commit``, ...), on the current branch.
    """

    def __init__(self, path: Union[str, "os.PathLike[str]"] = ".", rev: Optional[str] = None) -> None:
        self._native = _promptreg.Registry(os.fspath(path), rev)

    @property
    def root(self) -> str:
        """The registry's root folder."""
        return self._native.root()

    def get(
        self,
        id: str,
        label: Optional[str] = None,
        version: Optional[int] = None,
        commit: Optional[str] = None,
    ) -> Prompt:
        """The prompt ``id`` at its default, or at the label, version or commit given (``id``
        may also be a reference such as ``"greet@3"`` or ``"greet@prod"``)."""
        doc = json.loads(self._native.get(_reference(id, label, version, commit)))
        return Prompt.from_document(doc, renderer=self._render, origin="registry")

    def _render(self, prompt: Prompt, values: Mapping[str, Any]) -> Dict[str, Any]:
        return json.loads(self._native.render(prompt.reference, json.dumps(dict(values))))

    def list(self) -> List[Dict[str, Any]]:
        """Every prompt: its id, file, number of versions, latest, default and labels."""
        return json.loads(self._native.list())

    def versions(self, id: str) -> List[Dict[str, Any]]:
        """The versions of ``id``, newest first, each with its number, commit, author, time,
        message and default and label marks."""
        return json.loads(self._native.versions(id))

    def validate(self) -> List[Dict[str, Any]]:
        """What ``promptreg validate`` reports: every finding, with file, line and column."""
        return json.loads(self._native.validate())

    def commit(self, id: str, source: str, message: str) -> Dict[str, Any]:
        """Commits ``source`` as the next version of ``id`` (its first when new)."""
        return json.loads(self._native.commit(id, source, message))

    def set_default(self, id: str, version: int, message: Optional[str] = None) -> Dict[str, Any]:
        """Points the default of ``id`` at ``version`` in ``defaults.yaml``, in a commit."""
        return json.loads(self._native.point(id, None, int(version), message))

    def set_label(self, label: str, id: str, version: int, message: Optional[str] = None) -> Dict[str, Any]:
        """Points ``label`` of ``id`` at ``version`` in ``defaults.yaml``, in a commit."""
        return json.loads(self._native.point(id, label, int(version), message))

    def delete(self, id: str, message: Optional[str] = None) -> Dict[str, Any]:
        """Deletes ``id``: a commit removing its file and its lines of ``defaults.yaml``."""
        return json.loads(self._native.delete(id, message))
