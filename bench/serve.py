#!/usr/bin/env python3
"""Measurements behind `bench/serve` (called by it; Python 3 standard library and wrk).

    serve.py load  --spec FILE --out DIR [--rounds N] [--duration S] [--connections C]
                   [--threads T] [--max-other CORES]
    serve.py swap  --repo DIR --file PATH --url URL --prompt ID --version N [--times K] --out DIR
    serve.py cold  --bin P --registry DIR --out DIR [--runs N]
    serve.py fact  --out DIR KEY VALUE
    serve.py table --out DIR

`load`: the targets of FILE (a JSON list: name, url, optional method, headers, body, paths,
pids, group) are each run once for 2 s to warm up, then in N rounds: every group in turn, the
targets of a group back to back (so a pair such as serve and nginx on the same bytes sees the
same machine), the order of the groups and of the targets inside them reversed every other
round. Before each group it waits (at most 2 minutes) while other processes keep more than
CORES cores busy (default 0.3, from /proc/stat over a second). Each run is one wrk process (C keep-alive connections, T threads, S seconds, a 10 s
timeout so that slow answers count as latency, not as errors); a Lua `done` hook prints
throughput, latency percentiles and errors as JSON. Around each run the CPU time of the
server's processes (the `pids` and all their descendants), of wrk, and of everything else
(from /proc/stat) is recorded. Results go to OUT/load.json (appended to, by target name).

`swap`: commits one change to the prompt's file K times while the server runs and measures, for
each, the time from `git commit` returning to the first answer of `GET URL?version=N+k` that is
200 (polled every millisecond over one keep-alive connection). OUT/swap.json.

`cold`: a cold version-index build as BENCHMARKS.md measures it: `promptreg -C DIR list` after
removing `.git/promptreg`, N times. OUT/cold.json.

`fact`: records one number (peak RSS in KiB, a start-up time in seconds) in OUT/facts.json.

`table`: the ratios, as Markdown, from OUT/*.json and OUT/facts.json.
"""
import argparse
import http.client
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import urllib.parse

CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def load_json(path, default):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return default


def save_json(path, value):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


# ---------------------------------------------------------------- CPU accounting


def proc_table():
    """pid -> (ppid, utime + stime in seconds) for every process."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        table[int(name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK)
    return table


def tree_cpu(roots):
    """CPU seconds used so far by the processes `roots` and all their descendants."""
    table = proc_table()
    children = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    seen, todo, total = set(), list(roots), 0.0
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in table:
            continue
        seen.add(pid)
        total += table[pid][1]
        todo.extend(children.get(pid, []))
    return total


def machine_busy():
    """(busy jiffies, total jiffies) of all cores, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(x) for x in f.readline().split()[1:9]]
    return sum(values) - values[3] - values[4], sum(values)


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def busy_cores(seconds=1.0):
    """Cores busy over the next `seconds` (all processes: between runs the servers are idle)."""
    b0 = machine_busy()
    time.sleep(seconds)
    b1 = machine_busy()
    return (b1[0] - b0[0]) / max(1, b1[1] - b0[1]) * (os.cpu_count() or 1)


def wait_for_quiet(max_other, max_wait=120):
    """Waits (at most `max_wait` s) while other processes keep more than `max_other` cores busy."""
    t0 = time.monotonic()
    busy = busy_cores()
    if busy > max_other:
        log(f"  other processes keep {busy:.2f} cores busy (> {max_other}): waiting, at most "
            f"{max_wait} s")
        while busy > max_other and time.monotonic() - t0 < max_wait:
            busy = busy_cores(2.0)
        log(f"  {busy:.2f} cores busy after {time.monotonic() - t0:.0f} s")
    return busy


# ---------------------------------------------------------------- wrk


def lua_str(s):
    out = []
    for ch in s.encode():
        c = chr(ch)
        if c in '\\"':
            out.append("\\" + c)
        elif 32 <= ch < 127:
            out.append(c)
        else:
            out.append("\\%03d" % ch)
    return '"' + "".join(out) + '"'


DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %d, "p90_us": %d, ' ..
    '"p99_us": %d, "max_us": %d, "mean_us": %.1f, "err_connect": %d, "err_read": %d, ' ..
    '"err_write": %d, "err_status": %d, "err_timeout": %d}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def lua_script(target):
    lines = []
    if target.get("method"):
        lines.append(f"wrk.method = {lua_str(target['method'])}")
    if target.get("body") is not None:
        lines.append(f"wrk.body = {lua_str(target['body'])}")
    for k, v in (target.get("headers") or {}).items():
        lines.append(f"wrk.headers[{lua_str(k)}] = {lua_str(v)}")
    if target.get("paths"):
        # A fixed sequence of requests, as a client library makes them for one lookup.
        lines.append("local paths = {" + ", ".join(lua_str(p) for p in target["paths"]) + "}")
        lines.append("local i = 0")
        lines.append("request = function() i = i % #paths + 1; "
                     "return wrk.format(nil, paths[i]) end")
    return "\n".join(lines) + "\n" + DONE


def run_wrk(target, duration, connections, threads, script_dir):
    script = os.path.join(script_dir, target["name"] + ".lua")
    with open(script, "w") as f:
        f.write(lua_script(target))
    argv = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s",
            "--timeout", "10s", "-s", script, target["url"]]
    pids = target.get("pids") or []
    cpu0, busy0, wrk0, t0 = tree_cpu(pids), machine_busy(), children_cpu(), time.monotonic()
    out = subprocess.run(argv, capture_output=True, text=True)
    cpu1, busy1, wrk1, t1 = tree_cpu(pids), machine_busy(), children_cpu(), time.monotonic()
    if out.returncode != 0:
        raise SystemExit(f"wrk failed for {target['name']}: {out.stderr}")
    line = next((l for l in out.stdout.splitlines() if l.startswith("WRKJSON ")), None)
    if line is None:
        raise SystemExit(f"no result from wrk for {target['name']}:\n{out.stdout}{out.stderr}")
    r = json.loads(line[len("WRKJSON "):])
    secs = r["duration_us"] / 1e6
    wall = t1 - t0
    ncpu = os.cpu_count() or 1
    all_cores = (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]) * ncpu
    server_cores = (cpu1 - cpu0) / wall
    wrk_cores = (wrk1 - wrk0) / wall
    r.update({
        "rps": r["requests"] / secs,
        "errors": r["err_connect"] + r["err_read"] + r["err_write"] + r["err_status"]
        + r["err_timeout"],
        "bytes_per_response": r["bytes"] / max(1, r["requests"]),
        "server_cpu_us_per_request": (cpu1 - cpu0) / max(1, r["requests"]) * 1e6,
        "server_cores": server_cores,
        "wrk_cores": wrk_cores,
        "other_cores": max(0.0, all_cores - server_cores - wrk_cores),
    })
    return r


def cmd_load(args):
    with open(args.spec) as f:
        targets = json.load(f)
    os.makedirs(args.out, exist_ok=True)
    script_dir = os.path.join(args.out, "wrk")
    os.makedirs(script_dir, exist_ok=True)
    path = os.path.join(args.out, "load.json")
    results = load_json(path, {})
    groups = []
    for t in targets:
        g = t.get("group", t["name"])
        if not groups or groups[-1][0] != g:
            groups.append((g, []))
        groups[-1][1].append(t)
    for t in targets:
        log(f"  warm-up {t['name']}")
        run_wrk(t, 2, args.connections, args.threads, script_dir)
    for t in targets:
        results[t["name"]] = {"target": {k: v for k, v in t.items() if k != "pids"}, "runs": []}
    for rnd in range(args.rounds):
        order = groups if rnd % 2 == 0 else list(reversed(groups))
        for _, members in order:
            wait_for_quiet(args.max_other)
            for t in (members if rnd % 2 == 0 else list(reversed(members))):
                r = run_wrk(t, args.duration, args.connections, args.threads, script_dir)
                r["round"] = rnd
                results[t["name"]]["runs"].append(r)
                log(f"  round {rnd + 1}: {t['name']:<22} {r['rps']:>10.0f} req/s  "
                    f"p99 {r['p99_us'] / 1000:8.2f} ms  errors {r['errors']}  "
                    f"server {r['server_cpu_us_per_request']:.1f} us/req  "
                    f"cores: server {r['server_cores']:.2f} wrk {r['wrk_cores']:.2f} "
                    f"other {r['other_cores']:.2f}")
                save_json(path, results)


# ---------------------------------------------------------------- swap


def git(repo, *argv):
    env = dict(os.environ, GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@example.com",
               GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@example.com")
    subprocess.run(["git", "-C", repo, *argv], check=True, env=env,
                   stdout=subprocess.DEVNULL)


def cmd_swap(args):
    u = urllib.parse.urlsplit(args.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    base = u.path.rstrip("/") + "/v1/prompts/" + args.prompt + "?version="
    samples = []
    for k in range(1, args.times + 1):
        want = args.version + k
        conn.request("GET", base + str(want))
        resp = conn.getresponse()
        resp.read()
        if resp.status != 404:
            raise SystemExit(f"swap: version {want} answered {resp.status} before the commit")
        with open(args.file, "a") as f:
            f.write(f"# swap {k}\n")
        t_commit = time.monotonic()
        git(args.repo, "commit", "-q", "-m", f"bench: swap {k}", "--", args.file)
        t0 = time.monotonic()
        polls = 0
        while True:
            conn.request("GET", base + str(want))
            resp = conn.getresponse()
            resp.read()
            polls += 1
            if resp.status == 200:
                break
            if resp.status != 404:
                raise SystemExit(f"swap: version {want} answered {resp.status}")
            if time.monotonic() - t0 > 120:
                raise SystemExit(f"swap: version {want} not served 120 s after its commit")
            time.sleep(0.001)
        t1 = time.monotonic()
        samples.append({"seconds": t1 - t0, "polls": polls, "commit_seconds": t0 - t_commit})
        log(f"  swap {k}: version {want} served {1000 * (t1 - t0):.1f} ms after the commit "
            f"({polls} requests; the commit took {1000 * (t0 - t_commit):.0f} ms)")
        time.sleep(0.5)
    save_json(os.path.join(args.out, "swap.json"), {
        "samples": samples,
        "median_seconds": statistics.median(s["seconds"] for s in samples),
    })


# ---------------------------------------------------------------- cold index


def cmd_cold(args):
    git_dir = subprocess.run(["git", "-C", args.registry, "rev-parse", "--absolute-git-dir"],
                             check=True, capture_output=True, text=True).stdout.strip()
    times = []
    for i in range(args.runs):
        subprocess.run(["rm", "-rf", os.path.join(git_dir, "promptreg")], check=True)
        t = time.monotonic()
        subprocess.run([args.bin, "-C", args.registry, "list"], check=True,
                       stdout=subprocess.DEVNULL)
        times.append(time.monotonic() - t)
        log(f"  cold list {i + 1}: {times[-1]:.2f} s")
    save_json(os.path.join(args.out, "cold.json"),
              {"seconds": times, "median_seconds": statistics.median(times)})


# ---------------------------------------------------------------- table


def cmd_fact(args):
    path = os.path.join(args.out, "facts.json")
    facts = load_json(path, {})
    facts[args.key] = float(args.value)
    save_json(path, facts)



def med(results, name, key):
    runs = results.get(name, {}).get("runs") or []
    return statistics.median(r[key] for r in runs) if runs else None


def fmt_rps(x):
    return "-" if x is None else f"{x:,.0f}/s"


def fmt_ms(us):
    return "-" if us is None else (f"{us / 1000:.2f} ms" if us < 100_000 else f"{us / 1e6:.2f} s")


def fmt_ratio(x, digits=2):
    return "-" if x is None else f"{x:.{digits}f}x" if x < 100 else f"{x:,.0f}x"


def verdict(value, op, bound):
    if value is None:
        return "not measured"
    return "met" if (value >= bound if op == ">=" else value <= bound) else "**not met**"


def cmd_table(args):
    results = load_json(os.path.join(args.out, "load.json"), {})
    facts = load_json(os.path.join(args.out, "facts.json"), {})
    swap = load_json(os.path.join(args.out, "swap.json"), None)
    cold = load_json(os.path.join(args.out, "cold.json"), None)

    def ratio(a, b):
        return None if a is None or b is None or b == 0 else a / b

    rows = []

    def row(what, ours, base_name, base, r, target=None, op=None, bound=None, fmt=fmt_rps):
        if ours is None and base is None:
            return
        rows.append([what, fmt(ours), f"{base_name} {fmt(base)}",
                     fmt_ratio(r, 3 if r is not None and r < 0.1 else 2),
                     f"{op} {bound}x" if op else "", verdict(r, op, bound) if op else ""])

    def pair(what, ours, theirs, base_name, rps_bound, p99_bound=None, cpu=False):
        ro, rt = med(results, ours, "rps"), med(results, theirs, "rps")
        row(f"{what}: throughput", ro, base_name, rt, ratio(ro, rt), ">=", ">=", rps_bound)
        if p99_bound:
            po, pt = med(results, ours, "p99_us"), med(results, theirs, "p99_us")
            row(f"{what}: p99 latency", po, base_name, pt, ratio(po, pt), "<=", "<=", p99_bound,
                fmt=fmt_ms)
        if cpu:
            co = med(results, ours, "server_cpu_us_per_request")
            ct = med(results, theirs, "server_cpu_us_per_request")
            row(f"{what}: server CPU per request", co, base_name, ct, ratio(co, ct),
                fmt=lambda v: "-" if v is None else f"{v:.1f} us")

    # Issue 25: each at least 0.8x nginx's throughput, p99 within 1.5x, CPU reported.
    pair("GET one version (`?version=N`)", "serve-version", "nginx-version", "nginx", 0.8, 1.5,
         cpu=True)
    pair("GET a prompt's default", "serve-default", "nginx-default", "nginx", 0.8, 1.5, cpu=True)
    pair("304 revalidation (`If-None-Match`)", "serve-304", "nginx-304", "nginx", 0.8, 1.5,
         cpu=True)
    pair("GET a prompt's default against MLflow's alias lookup", "serve-default", "mlflow-alias",
         "MLflow `registered-models/alias`", 50)
    pair("GET one version against MLflow's version lookup", "serve-version", "mlflow-version",
         "MLflow `model-versions/get`", 50)
    if results.get("mlflow-client-alias", {}).get("runs"):
        n = len(results["mlflow-client-alias"]["target"].get("paths") or [1])
        ro = med(results, "serve-default", "rps")
        rt = med(results, "mlflow-client-alias", "rps") / n
        row(f"GET a prompt's default against MLflow's client `load_prompt(\"prompts:/ID@alias\")` "
            f"({n} requests a lookup), lookups", ro, "MLflow", rt, ratio(ro, rt))
    pair("POST render against our own GET of the default", "serve-render", "serve-default",
         "promptreg GET", 0.7)
    if swap and cold:
        s, c = swap["median_seconds"], cold["median_seconds"]
        row("swap in a snapshot one commit ahead (commit returns -> first 200 of the new version)",
            s * 1e6, "cold index build (`list`, no cache)", c * 1e6, s / c, "<=", "<=", 0.1,
            fmt=fmt_ms)

    print("| what | promptreg | baseline | ratio | target | |")
    print("|---|---:|---:|---:|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print()
    facts_rows = [
        ("hwm_medium", "peak RSS of `serve`, medium, after the load runs and the swaps", "mb"),
        ("hwm_medium_before_swap", "peak RSS of `serve`, medium, after the load runs", "mb"),
        ("hwm_medium_cold", "peak RSS of `serve`, medium, started without an index cache", "mb"),
        ("hwm_large", "peak RSS of `serve`, large (5000 prompts), after 5 s of GET and of render",
         "mb"),
        ("snapshot_load_medium", "building the new snapshot, as the server logs it (median of "
         "the swaps)", "s"),
        ("startup_medium", "`serve` start -> first 200 of `/readyz`, medium, index cached", "s"),
        ("startup_medium_cold", "`serve` start -> first 200 of `/readyz`, medium, no cache", "s"),
        ("startup_large", "`serve` start -> first 200 of `/readyz`, large, index cached", "s"),
    ]
    present = [(k, w, u) for k, w, u in facts_rows if k in facts]
    if present:
        print("| what | value |")
        print("|---|---:|")
        for k, w, u in present:
            v = f"{facts[k] / 1024:.0f} MB" if u == "mb" else fmt_ms(facts[k] * 1e6)
            print(f"| {w} | {v} |")
        print()
    print("| run | req/s | p50 | p99 | errors | bytes/response | server CPU per request "
          "| cores: server / wrk / other |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for name, res in results.items():
        runs = res["runs"]
        if not runs:
            continue
        print(f"| {name} | {fmt_rps(med(results, name, 'rps'))} "
              f"| {fmt_ms(med(results, name, 'p50_us'))} "
              f"| {fmt_ms(med(results, name, 'p99_us'))} "
              f"| {sum(r['errors'] for r in runs)} "
              f"| {med(results, name, 'bytes_per_response'):.0f} "
              f"| {med(results, name, 'server_cpu_us_per_request'):.1f} us "
              f"| {med(results, name, 'server_cores'):.2f} / {med(results, name, 'wrk_cores'):.2f}"
              f" / {med(results, name, 'other_cores'):.2f} |")


# ---------------------------------------------------------------- main


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("load")
    a.add_argument("--spec", required=True)
    a.add_argument("--out", required=True)
    a.add_argument("--rounds", type=int, default=2)
    a.add_argument("--duration", type=int, default=10)
    a.add_argument("--connections", type=int, default=64)
    a.add_argument("--threads", type=int, default=2)
    a.add_argument("--max-other", type=float, default=0.3)
    a = sub.add_parser("swap")
    a.add_argument("--repo", required=True)
    a.add_argument("--file", required=True)
    a.add_argument("--url", required=True)
    a.add_argument("--prompt", required=True)
    a.add_argument("--version", type=int, required=True)
    a.add_argument("--times", type=int, default=5)
    a.add_argument("--out", required=True)
    a = sub.add_parser("cold")
    a.add_argument("--bin", required=True)
    a.add_argument("--registry", required=True)
    a.add_argument("--runs", type=int, default=3)
    a.add_argument("--out", required=True)
    a = sub.add_parser("fact")
    a.add_argument("--out", required=True)
    a.add_argument("key")
    a.add_argument("value")
    a = sub.add_parser("table")
    a.add_argument("--out", required=True)
    args = p.parse_args()
    {"load": cmd_load, "swap": cmd_swap, "cold": cmd_cold, "fact": cmd_fact, "table": cmd_table}[args.cmd](args)


if __name__ == "__main__":
    main()
