#!/usr/bin/env python3
"""Measurements behind `bench/run` (called by it; Python 3 standard library, hyperfine, GNU time).

    measure.py sizes  --bin P --minijinja M --fixtures DIR --repos DIR --out DIR
                      --sizes small,medium [--runs N] [--fast-runs K] [--max-load L]
    measure.py growth --bin P --repos DIR --out DIR [--runs N] [--max-load L]
    measure.py table  --out DIR

`sizes`: for each size, N rounds; in each round every command runs once (commands that took
under 0.1 s in the warm-up pass: K times, under 1 s: 3 times) with hyperfine, promptreg and
its baseline back to back, the order of the commands reversed every other round. The medians
are over all runs of all rounds. Before each round the 1-minute load average is checked; above
L the round waits (60 s at a time, at most 10 minutes). Each round records how many cores other
processes kept busy (from /proc/stat, minus the benchmark's own CPU time). Raw hyperfine JSON
goes to OUT/raw/, the summary to OUT/<size>.json, and the table (all sizes found in OUT) is
printed.

`growth`: cold and warm `list`, peak RSS of a cold `list`, and the git log baseline on the
repositories `g-p<P>-c<C>` in REPOS (made by bench/run), summary in OUT/growth.json.
"""
import argparse
import glob
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import time

SIZES = ["small", "medium", "large"]
GIT_LOG = ["git", "log", "--first-parent", "--diff-merges=first-parent", "--raw",
           "--no-renames", "--", "prompts/"]
GIT_LOG_TEXT = "git log --first-parent --diff-merges=first-parent --raw --no-renames -- prompts/"
RENDER_ID = "chat-reply"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- load


def cpu_jiffies():
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:]
    values = [int(x) for x in parts]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values[:8]) - idle, sum(values[:8])


def own_cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    s = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime + s.ru_utime + s.ru_stime


class LoadMeter:
    """Cores kept busy by other processes while a block runs."""

    def __enter__(self):
        self.busy0, self.total0 = cpu_jiffies()
        self.own0 = own_cpu_seconds()
        self.t0 = time.monotonic()
        return self

    def __exit__(self, *exc):
        busy1, total1 = cpu_jiffies()
        wall = time.monotonic() - self.t0
        ncpu = os.cpu_count() or 1
        busy_cores = (busy1 - self.busy0) / max(1, total1 - self.total0) * ncpu
        own_cores = (own_cpu_seconds() - self.own0) / max(wall, 1e-9)
        self.busy = busy_cores
        self.other = max(0.0, busy_cores - own_cores)
        self.wall = wall


def wait_for_quiet(max_load, max_wait=600):
    """Waits while the 1-minute load average is above max_load; returns it."""
    waited = 0
    while True:
        load = os.getloadavg()[0]
        if load <= max_load or waited >= max_wait:
            if waited:
                log(f"  load {load:.2f} after waiting {waited} s")
            return load
        log(f"  load average {load:.2f} > {max_load}: waiting 60 s")
        time.sleep(60)
        waited += 60


# ---------------------------------------------------------------- running


def hyperfine(argv, cwd, runs, warmup, prepare, json_path):
    args = ["hyperfine", "-N", "--style", "none", "--runs", str(runs), "--warmup", str(warmup),
            "--export-json", json_path]
    if prepare:
        args += ["--prepare", "bash -c " + shlex.quote(prepare)]
    args.append(shlex.join(argv))
    with open(os.path.join(os.path.dirname(json_path), "hyperfine-warnings.log"), "a") as err:
        err.write(f"== {shlex.join(argv)}\n")
        err.flush()
        subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=err)
    with open(json_path) as f:
        result = json.load(f)["results"][0]
    return result["times"]


def run_once(argv, cwd, prepare=None):
    if prepare:
        subprocess.run(prepare, cwd=cwd, shell=True, check=True)
    t = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def peak_rss_kib(argv, cwd, prepare=None):
    if prepare:
        subprocess.run(prepare, cwd=cwd, shell=True, check=True)
    out = subprocess.run(["/usr/bin/time", "-f", "%M %e"] + argv, cwd=cwd, check=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    rss, wall = out.stderr.strip().splitlines()[-1].split()
    return int(rss), float(wall)


def median(xs):
    return statistics.median(xs) if xs else None


# ---------------------------------------------------------------- sizes


def head_cache(repo, binary, saved):
    """The version-index cache as it is after `list` at HEAD~1, saved to `saved`."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True,
                          capture_output=True, text=True).stdout.strip()
    branch = subprocess.run(["git", "symbolic-ref", "HEAD"], cwd=repo, check=True,
                            capture_output=True, text=True).stdout.strip()
    subprocess.run(["rm", "-rf", saved, os.path.join(repo, ".git/promptreg")], check=True)
    subprocess.run(["git", "update-ref", branch, "HEAD~1"], cwd=repo, check=True)
    try:
        subprocess.run([binary, "-C", "prompts", "list"], cwd=repo, check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run(["cp", "-a", os.path.join(repo, ".git/promptreg"), saved], check=True)
    finally:
        subprocess.run(["git", "update-ref", branch, head], cwd=repo, check=True)
    return head


def count_prompts(repo):
    return sum(1 for f in os.listdir(os.path.join(repo, "prompts")) if f.endswith(".prompt.yaml"))


def measure_size(args, size):
    repo = os.path.join(args.repos, size)
    binary = args.bin
    fx = args.fixtures
    saved = os.path.join(args.repos, f"{size}.cache-at-head-1")
    raw_dir = os.path.join(args.out, "raw", size)
    os.makedirs(raw_dir, exist_ok=True)
    head = head_cache(repo, binary, saved)
    prompts = count_prompts(repo)
    rm_cache = "rm -rf .git/promptreg"
    restore = f"rm -rf .git/promptreg && cp -a {shlex.quote(saved)} .git/promptreg"
    list_argv = [binary, "-C", "prompts", "list"]
    cmds = [
        # name, argv, prepare, warmup
        ("cold_list", list_argv, rm_cache, 0),
        ("git_log", GIT_LOG, None, 0),
        ("warm_list", list_argv, None, 1),
        ("list_after_commit", list_argv, restore, 0),
        ("git_rev_parse", ["git", "rev-parse", "HEAD"], None, 1),
        ("promptreg_version", [binary, "--version"], None, 1),
        ("validate", [binary, "-C", "prompts", "validate"], None, 1),
    ]
    has_render = os.path.exists(os.path.join(repo, "prompts", RENDER_ID + ".prompt.yaml"))
    if has_render:
        cmds += [
            ("render", [binary, "-C", "prompts", "render", RENDER_ID + "@latest", "--vars",
                        os.path.join(fx, "data.json")], None, 1),
            ("minijinja_cli", [args.minijinja, "--strict", os.path.join(fx, "prompt.j2"),
                               os.path.join(fx, "data.json")], None, 1),
        ]
    else:
        log(f"  {size}: no prompts/{RENDER_ID}.prompt.yaml, render not measured")

    # Warm-up pass: every command once, to warm the page cache and pick runs per round.
    per_round = {}
    for name, argv, prepare, _ in cmds:
        t = run_once(argv, repo, prepare)
        per_round[name] = args.fast_runs if t < 0.1 else (3 if t < 1.0 else 1)
        log(f"  {size}: warm-up {name} {t:.3f} s -> {per_round[name]} run(s) per round")

    times = {name: [] for name, *_ in cmds}
    rss = {"cold_list": [], "git_log": []}
    rounds = []
    for r in range(args.runs):
        for attempt in range(1, 4):
            load = wait_for_quiet(args.max_load)
            order = cmds if r % 2 == 0 else list(reversed(cmds))
            got = {}
            got_rss = {"cold_list": [], "git_log": []}
            with LoadMeter() as meter:
                for name, argv, prepare, warmup in order:
                    path = os.path.join(raw_dir, f"{name}-round{r + 1}-try{attempt}.json")
                    got[name] = hyperfine(argv, repo, per_round[name], warmup, prepare, path)
                kib, _ = peak_rss_kib(list_argv, repo, "rm -rf .git/promptreg")
                got_rss["cold_list"].append(kib)
                if median(got["git_log"]) < 10:
                    kib, _ = peak_rss_kib(GIT_LOG, repo)
                    got_rss["git_log"].append(kib)
            log(f"  {size}: round {r + 1}/{args.runs} (try {attempt}) done in {meter.wall:.0f} s, "
                f"other processes kept {meter.other:.2f} cores busy (load before {load:.2f})")
            if meter.other <= args.max_other or attempt == 3:
                break
            log(f"  {size}: more than {args.max_other} cores busy elsewhere: redoing the round")
            time.sleep(30)
        for name in got:
            times[name] += got[name]
        for name in got_rss:
            rss[name] += got_rss[name]
        rounds.append({"round": r + 1, "attempts": attempt, "loadavg_before": round(load, 2),
                       "busy_cores": round(meter.busy, 2), "other_cores": round(meter.other, 2),
                       "wall_s": round(meter.wall, 1)})
    summary = {
        "size": size,
        "head": head,
        "prompts": prompts,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "rounds": rounds,
        "runs_per_round": per_round,
        "median_s": {k: median(v) for k, v in times.items()},
        "min_s": {k: min(v) for k, v in times.items()},
        "max_s": {k: max(v) for k, v in times.items()},
        "n": {k: len(v) for k, v in times.items()},
        "times_s": times,
        "peak_rss_kib": {k: median(v) for k, v in rss.items()},
        "peak_rss_all_kib": rss,
        "cache_bytes": sum(os.path.getsize(p) for p in
                           glob.glob(os.path.join(repo, ".git/promptreg/*.bin"))),
        "commands": {name: shlex.join(argv) for name, argv, *_ in cmds},
        "binary": binary,
    }
    with open(os.path.join(args.out, f"{size}.json"), "w") as f:
        json.dump(summary, f, indent=1)
    return summary


# ---------------------------------------------------------------- table


def fmt_s(s):
    if s is None:
        return "-"
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 0.01:
        return f"{s * 1e3:.0f} ms"
    return f"{s * 1e3:.1f} ms"


def verdict(ok):
    return "met" if ok else "**not met**"


def table(out):
    results = {}
    for size in SIZES:
        path = os.path.join(out, f"{size}.json")
        if os.path.exists(path):
            with open(path) as f:
                results[size] = json.load(f)
    lines = ["| size | what | promptreg | baseline | baseline median | ratio | target | |",
             "|---|---|---:|---|---:|---:|---|---|"]
    for size, r in results.items():
        m = r["median_s"]
        log_s = m["git_log"]

        def row(what, ours, base_name, base, target_ratio, target_text):
            ratio = ours / base
            lines.append(f"| {size} | {what} | {fmt_s(ours)} | {base_name} | {fmt_s(base)} | "
                         f"{ratio:.3f}x | {target_text} | {verdict(ratio <= target_ratio)} |")

        row("cold `list` (no cache)", m["cold_list"], "git log", log_s, 1.0, "<= 1.0x")
        row("warm `list` (cache hit)", m["warm_list"], "git log", log_s, 0.05, "<= 0.05x")
        row("`list` after one new commit", m["list_after_commit"], "git log", log_s, 0.1,
            "<= 0.1x")
        if "render" in m:
            row(f"`render {RENDER_ID}@latest` (process)", m["render"], "minijinja-cli",
                m["minijinja_cli"], 2.0, "<= 2x")
        per_k = m["validate"] / (r["prompts"] / 1000)
        lines.append(f"| {size} | `validate`, {r['prompts']} prompts | {fmt_s(m['validate'])} "
                     f"({fmt_s(per_k)} per 1000) | - | - | - | <= 0.5 s per 1000 | "
                     f"{verdict(per_k <= 0.5)} |")
        rss = r["peak_rss_kib"]["cold_list"] / 1024
        git_rss = r["peak_rss_kib"].get("git_log")
        git_rss_text = f"{git_rss / 1024:.0f} MB" if git_rss else "-"
        lines.append(f"| {size} | peak RSS, cold `list` | {rss:.0f} MB | git log | "
                     f"{git_rss_text} | - | <= 150 MB (large) | "
                     f"{verdict(rss <= 150) if size == 'large' else '-'} |")
        lines.append(f"| {size} | (floor) `promptreg --version` | "
                     f"{fmt_s(m.get('promptreg_version'))} | `git rev-parse HEAD` | "
                     f"{fmt_s(m['git_rev_parse'])} | - | - | |")
    flat = []
    if "medium" in results and "large" in results:
        mm, ml = results["medium"]["median_s"], results["large"]["median_s"]
        for name, what in [("warm_list", "warm `list`"), ("render", "`render`")]:
            if name in mm and name in ml:
                flat.append(f"* {what}: medium {fmt_s(mm[name])}, large {fmt_s(ml[name])} "
                            f"({ml[name] / mm[name]:.2f}x)")
    lines.append("")
    for size, r in results.items():
        others = [x["other_cores"] for x in r["rounds"]]
        loads = [x["loadavg_before"] for x in r["rounds"]]
        runs = ", ".join(f"{k} {v}" for k, v in r["n"].items())
        lines.append(f"* {size}: {len(r['rounds'])} round(s), runs per command: "
                     f"{runs}; measured {r['date']}; load average before rounds "
                     f"{min(loads)}-{max(loads)}; other processes kept "
                     f"{min(others):.2f}-{max(others):.2f} cores busy; cache file "
                     f"{r['cache_bytes'] / 1024:.0f} KiB")
    if flat:
        lines.append("")
        lines.append("Medium to large:")
        lines += flat
    return "\n".join(lines)


# ---------------------------------------------------------------- growth


def measure_growth(args):
    repos = sorted(glob.glob(os.path.join(args.repos, "g-p*-c*")),
                   key=lambda p: tuple(int(x) for x in
                                       os.path.basename(p)[3:].split("-c")))
    rows = []
    raw_dir = os.path.join(args.out, "raw", "growth")
    os.makedirs(raw_dir, exist_ok=True)
    list_argv = [args.bin, "-C", "prompts", "list"]
    for repo in repos:
        name = os.path.basename(repo)
        p, c = (int(x) for x in name[3:].split("-c"))
        for attempt in range(1, 4):
            load = wait_for_quiet(args.max_load)
            with LoadMeter() as meter:
                run_once(list_argv, repo, "rm -rf .git/promptreg")  # warm the page cache
                cold = hyperfine(list_argv, repo, args.runs, 0, "rm -rf .git/promptreg",
                                 os.path.join(raw_dir, f"{name}-cold-try{attempt}.json"))
                warm = hyperfine(list_argv, repo, max(3, args.runs), 1, None,
                                 os.path.join(raw_dir, f"{name}-warm-try{attempt}.json"))
                gl = hyperfine(GIT_LOG, repo, args.runs, 0, None,
                               os.path.join(raw_dir, f"{name}-gitlog-try{attempt}.json"))
                rss = [peak_rss_kib(list_argv, repo, "rm -rf .git/promptreg")[0]
                       for _ in range(args.runs)]
                git_rss = peak_rss_kib(GIT_LOG, repo)[0]
            if meter.other <= args.max_other or attempt == 3:
                break
            log(f"  growth {name}: other processes kept {meter.other:.2f} cores busy: redoing")
            time.sleep(30)
        cache = sum(os.path.getsize(x) for x in glob.glob(os.path.join(repo, ".git/promptreg/*.bin")))
        fp = int(subprocess.run(["git", "rev-list", "--first-parent", "--count", "HEAD"],
                                cwd=repo, check=True, capture_output=True, text=True).stdout)
        row = {"repo": name, "prompts": p, "commits": c, "first_parent": fp,
               "cold_list_s": median(cold), "warm_list_s": median(warm),
               "git_log_s": median(gl), "peak_rss_kib": median(rss), "git_log_rss_kib": git_rss,
               "cache_bytes": cache, "other_cores": round(meter.other, 2),
               "loadavg_before": round(load, 2), "runs": args.runs, "attempts": attempt}
        rows.append(row)
        log(f"  growth {name}: cold {row['cold_list_s']:.2f} s, warm {row['warm_list_s']:.3f} s, "
            f"git log {row['git_log_s']:.2f} s, RSS {row['peak_rss_kib'] / 1024:.0f} MB "
            f"(other cores {meter.other:.2f})")
    with open(os.path.join(args.out, "growth.json"), "w") as f:
        json.dump({"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "rows": rows}, f, indent=1)
    return rows


def growth_table(out):
    path = os.path.join(out, "growth.json")
    if not os.path.exists(path):
        return ""
    with open(path) as f:
        rows = json.load(f)["rows"]
    lines = ["| prompts | commits | cold `list` | warm `list` | index (cold - warm) | "
             "per first-parent commit | git log | ratio | peak RSS | git log RSS | cache |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        index = r["cold_list_s"] - r["warm_list_s"]
        lines.append(
            f"| {r['prompts']} | {r['commits']} | {fmt_s(r['cold_list_s'])} | "
            f"{fmt_s(r['warm_list_s'])} | {fmt_s(index)} | "
            f"{index / r['first_parent'] * 1e6:.0f} us | {fmt_s(r['git_log_s'])} | "
            f"{r['cold_list_s'] / r['git_log_s']:.2f}x | {r['peak_rss_kib'] / 1024:.0f} MB | "
            f"{r['git_log_rss_kib'] / 1024:.0f} MB | {r['cache_bytes'] / 1024:.0f} KiB |")
    return "\n".join(lines)


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["sizes", "growth", "table"])
    ap.add_argument("--bin")
    ap.add_argument("--minijinja")
    ap.add_argument("--fixtures")
    ap.add_argument("--repos")
    ap.add_argument("--out", required=True)
    ap.add_argument("--sizes", default="small,medium")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--fast-runs", type=int, default=10)
    ap.add_argument("--max-load", type=float, default=1.5)
    ap.add_argument("--max-other", type=float, default=0.3)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.mode == "sizes":
        for size in args.sizes.split(","):
            log(f"== {size}")
            measure_size(args, size)
    elif args.mode == "growth":
        measure_growth(args)
    print(f"\n{platform.node()}: {os.cpu_count()} cores\n")
    print(table(args.out))
    g = growth_table(args.out)
    if g:
        print("\nGrowth:\n")
        print(g)


if __name__ == "__main__":
    main()
