"""Prepares Prompty files with the `prompty` package, the oracle for promptreg's Prompty support.

Usage: python prompty_prepare.py ROOT FILE...

For each FILE (relative to ROOT) prints one JSON line: the inputs it was prepared with and the
messages `prompty.prepare` gave, or the error it raised. The inputs are the same ones promptreg
is given: every variable the body uses that the file does not give a default gets the value of the
file's `sample` (the older schema), else the string "<NAME>". The process environment is emptied of model keys, and dummy ones are set, because
Prompty resolves `${env:...}` in connection settings while loading.
"""

import json
import os
import sys

import jinja2
import jinja2.meta
import prompty
import yaml
from prompty.core.pipeline import prepare


def sample_of(path):
    """The older schema's `sample` mapping of a file's front matter, if it has one."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    parts = text.split("---", 2)
    if len(parts) < 3:
        return {}
    try:
        front = yaml.safe_load(parts[1]) or {}
    except yaml.YAMLError:
        return {}
    sample = front.get("sample") if isinstance(front, dict) else None
    return sample if isinstance(sample, dict) else {}


def inputs_for(agent, path):
    env = jinja2.Environment()
    used = jinja2.meta.find_undeclared_variables(env.parse(agent.instructions or ""))
    declared = {p.name: p for p in (agent.inputs or [])}
    sample = sample_of(path)
    values = {}
    for name in sorted(used):
        prop = declared.get(name)
        if prop is not None and (prop.default is not None or prop.kind in ("thread", "image", "audio", "file")):
            continue
        values[name] = sample.get(name, "<%s>" % name)
    return values


def main():
    root = sys.argv[1]
    os.environ["OPENAI_API_KEY"] = "dummy"
    os.environ["AZURE_OPENAI_ENDPOINT"] = "https://127.0.0.1"
    os.environ["AZURE_OPENAI_API_KEY"] = "dummy"
    for rel in sys.argv[2:]:
        out = {"file": rel}
        try:
            agent = prompty.load(os.path.join(root, rel))
        except Exception as e:  # the oracle cannot read it: nothing to compare
            out["error"] = "load: %s: %s" % (type(e).__name__, e)
            print(json.dumps(out), flush=True)
            continue
        try:
            values = inputs_for(agent, os.path.join(root, rel))
            out["inputs"] = values
            messages = prepare(agent, values)
            out["messages"] = [
                {
                    "role": m.role,
                    "content": "".join(getattr(p, "value", "") or "" for p in m.parts),
                }
                for m in messages
            ]
        except Exception as e:
            out["error"] = "prepare: %s: %s" % (type(e).__name__, e)
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
