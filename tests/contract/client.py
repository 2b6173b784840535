"""Drives every route of `promptreg serve` through a client generated from its OpenAPI document
by openapi-python-client (tests/integration/contract.rs generates it, then runs this).

Usage: python client.py BASE_URL TOKEN
The generated package `promptreg_client` must be importable (PYTHONPATH).
"""

import sys
import warnings

from promptreg_client import AuthenticatedClient
from promptreg_client.api.api import events, hook, prompt, render, versions
from promptreg_client.api.default import (
    analyze_route,
    create,
    delete,
    healthz,
    list_,
    manifest,
    metrics,
    openapi,
    readyz,
    set_default,
    set_label,
    unset_default,
    unset_label,
)
from promptreg_client.models import HookBody, MessageBody, NewSource, PointBody, RenderBody

warnings.simplefilter("error")
base, token = sys.argv[1], sys.argv[2]
client = AuthenticatedClient(base_url=base, token=token, raise_on_unexpected_status=True)
kind = lambda value: type(value).__name__

page = list_.sync(client=client, limit=2)
assert kind(page) == "PromptPage" and len(page.prompts) == 2, page
pid = "support/triage"
doc = prompt.sync(pid, client=client)
assert kind(doc) == "PromptDoc" and doc.id == pid and doc.default is True, doc
assert kind(prompt.sync(pid, client=client, version=1)) == "PromptDoc"
assert kind(versions.sync(pid, client=client)) == "VersionList"
assert kind(render.sync(pid, client=client, body=RenderBody(test_case=0))) == "RenderDoc"
# An optional body left out: the generator sends JSON null, which is no body.
assert kind(render.sync(pid, client=client, body=None)) == "Problem"  # required variables
assert kind(manifest.sync(client=client)) == "ManifestDoc"
for attempt in range(2):  # the same value again is a success too
    written = set_default.sync(pid, client=client, body=PointBody(version=1))
    assert kind(written) == "Written" and written.version == 1, written
assert kind(set_label.sync("beta", pid, client=client, body=PointBody(version=1))) == "Written"
assert kind(unset_label.sync("beta", pid, client=client, body=MessageBody())) == "Written"
assert kind(unset_default.sync(pid, client=client, body=MessageBody())) == "Written"
made = create.sync("client/new", client=client, body=NewSource(message="From a generated client", source="template: hi\n"))
assert kind(made) == "Written" and made.version == 1, made
assert kind(delete.sync("client/new", client=client, body=MessageBody())) == "Written"
assert healthz.sync(client=client).strip() == "ok"
assert kind(readyz.sync(client=client)) == "Ready"
assert "promptreg_http_requests_total" in metrics.sync(client=client)
assert openapi.sync_detailed(client=client).status_code == 200
# Off on this server, and said so with a declared problem.
assert analyze_route.sync_detailed("score", pid, client=client, body=None).status_code == 403
assert hook.sync_detailed(client=client, body=HookBody()).status_code == 409
assert events.sync_detailed is not None  # a stream: the generated client has the route
client.get_httpx_client().close()
print("every route answered as declared")
