#!/usr/bin/env python3
"""Cold `list` of several promptreg binaries and the git log baseline, interleaved round by round.

    bench/ab.py --repo target/bench-repos/medium [--rounds 3] LABEL=BINARY [LABEL=BINARY ...]

For comparing builds of different commits (what a change bought) on one machine in one sitting:
in every round each binary runs one cold `list` (the version-index cache removed first) and git
runs `git log --first-parent --diff-merges=first-parent --raw --no-renames -- prompts/`, in an
order that rotates every round; then each binary's peak RSS is taken with GNU time. Prints the
median wall time, the ratio to git log and the median peak RSS per binary. Uses `measure.py`'s
hyperfine and GNU time helpers.
"""
import argparse
import os
import statistics
import tempfile

from measure import GIT_LOG, hyperfine, peak_rss_kib

COLD = "rm -rf .git/promptreg"


def hyperfine_once(argv, cwd, prepare):
    with tempfile.TemporaryDirectory() as tmp:
        return hyperfine(argv, cwd, 1, 0, prepare, os.path.join(tmp, "run.json"))[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("bins", nargs="+", metavar="LABEL=BINARY")
    args = ap.parse_args()
    bins = [b.split("=", 1) for b in args.bins]
    cmds = [(label, [os.path.abspath(path), "-C", "prompts", "list"], COLD)
            for label, path in bins] + [("git log", GIT_LOG, None)]
    times = {label: [] for label, *_ in cmds}
    rss = {label: [] for label, _ in bins}
    for r in range(args.rounds):
        order = cmds[r % len(cmds):] + cmds[:r % len(cmds)]
        for label, argv, prepare in order:
            times[label].append(hyperfine_once(argv, args.repo, prepare))
        for label, argv, _ in cmds[:-1]:
            rss[label].append(peak_rss_kib(argv, args.repo, COLD)[0] / 1024)
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()),
              flush=True)
    base = statistics.median(times["git log"])
    print(f"\n| build | cold `list` | ratio to git log | peak RSS |\n|---|---:|---:|---:|")
    for label, _ in bins:
        t = statistics.median(times[label])
        print(f"| {label} | {t:.2f} s | {t / base:.2f}x | {statistics.median(rss[label]):.0f} MB |")
    print(f"| git log | {base:.2f} s | 1.00x | |")


if __name__ == "__main__":
    main()
