#!/usr/bin/env python3
"""The web UI's pages against the JSON routes with the same data (issue 22, item 11).

On the shared bench's medium repository (1000 prompts): the list page (`/`) against
`GET /v1/prompts?limit=1000`, and the page of the prompt whose version count is nearest 200
(`/p/ID`) against `GET /v1/prompts/ID?expand=versions`. Each pair runs back to back under one
wrk (C connections, T threads, S seconds), R rounds with the order reversed every other round;
medians over rounds. Reports requests per second, p50/p99 latency, the server's CPU per
request, the ratio page/JSON, and each page's weight (HTML, plus the script and style sheet
once). Called by `bench/ui`; Python 3 standard library and wrk.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve as tools  # noqa: E402  (bench/serve.py: the wrk runner and CPU accounting)


def fetch(url):
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.read()


def main():
    base, pid, out, duration, rounds, connections, threads = sys.argv[1:8]
    duration, rounds = int(duration), int(rounds)
    connections, threads = int(connections), int(threads)
    listing = json.loads(fetch(base + "/v1/prompts?limit=1000"))
    prompts = listing["prompts"]
    chosen = min(prompts, key=lambda p: (abs(p["versions"] - 200), p["id"]))
    pid_list = [int(pid)]
    pairs = [
        ("list page", "/", "list JSON", "/v1/prompts?limit=1000"),
        (f"prompt page ({chosen['versions']} versions)", "/p/" + chosen["id"],
         "prompt JSON", "/v1/prompts/" + chosen["id"] + "?expand=versions"),
    ]
    scripts = tempfile.mkdtemp(prefix="bench-ui-")
    results = {}
    for i in range(rounds):
        for page_name, page, json_name, json_path in pairs:
            order = [(page_name, page), (json_name, json_path)]
            if i % 2:
                order.reverse()
            for name, path in order:
                target = {"name": f"r{i}-{len(results)}", "url": base + path, "pids": pid_list}
                r = tools.run_wrk(target, duration, connections, threads, scripts)
                if r["errors"]:
                    raise SystemExit(f"{name}: {r['errors']} errors")
                results.setdefault(name, []).append(r)
    assets = sum(len(fetch(base + a)) for a in ["/assets/app.js", "/assets/app.css"])
    rows = []
    for page_name, page, json_name, json_path in pairs:
        med = lambda name, key: statistics.median(r[key] for r in results[name])  # noqa: E731
        page_bytes, json_bytes = len(fetch(base + page)), len(fetch(base + json_path))
        rows.append({
            "page": page_name, "json": json_name,
            "page_rps": med(page_name, "rps"), "json_rps": med(json_name, "rps"),
            "page_p50_ms": med(page_name, "p50_us") / 1000, "json_p50_ms": med(json_name, "p50_us") / 1000,
            "page_p99_ms": med(page_name, "p99_us") / 1000, "json_p99_ms": med(json_name, "p99_us") / 1000,
            "page_cpu_us": med(page_name, "server_cpu_us_per_request"),
            "json_cpu_us": med(json_name, "server_cpu_us_per_request"),
            "page_bytes": page_bytes, "json_bytes": json_bytes, "assets_bytes": assets,
        })
    with open(os.path.join(out, "ui.json"), "w") as f:
        json.dump({"chosen": chosen, "rows": rows}, f, indent=2)
    lines = [
        "| page | its JSON route | page req/s | JSON req/s | page/JSON throughput | page CPU/req | JSON CPU/req | page p50 / p99 | JSON p50 / p99 | page HTML | JSON | script + style (once) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['page']} | {r['json']} | {r['page_rps']:,.0f} | {r['json_rps']:,.0f} | "
            f"{r['page_rps'] / r['json_rps']:.2f}x | {r['page_cpu_us']:,.0f} us | {r['json_cpu_us']:,.0f} us | "
            f"{r['page_p50_ms']:.1f} / {r['page_p99_ms']:.1f} ms | {r['json_p50_ms']:.1f} / {r['json_p99_ms']:.1f} ms | "
            f"{r['page_bytes'] / 1024:,.0f} KiB | {r['json_bytes'] / 1024:,.0f} KiB | {r['assets_bytes'] / 1024:,.1f} KiB |")
    table = "\n".join(lines) + "\n"
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write(table)
    print(table)


if __name__ == "__main__":
    main()
