#!/usr/bin/env python3
"""The Python package against MLflow's prompt registry, one prompt lookup and render at a time
(issue 23, item 7). Called by `bench/python` with the registry, the two servers' URLs and the
names; runs in a virtualenv holding both the promptreg package and mlflow.

For each side, every prompt is fetched and rendered in turn, `--rounds` times, after one warm-up
pass; the median time of one fetch + render is reported, and its ratio to MLflow's.
"""

import json
import statistics
import sys
import time


def timed(calls, rounds):
    samples = []
    for _ in range(rounds):
        for call in calls:
            t = time.perf_counter()
            call()
            samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1e6


def main():
    registry, serve_url, mlflow_url, names_json, rounds = sys.argv[1:6]
    names, rounds = json.loads(names_json), int(rounds)
    import mlflow
    import promptreg

    mlflow.set_tracking_uri(mlflow_url)
    embedded = promptreg.Registry(registry)
    client = promptreg.Client(serve_url, cache_ttl_seconds=3600)
    sides = {
        "promptreg Registry (embedded): get + render": [
            (lambda n=n: embedded.get(n).render(customer="Ada")) for n in names],
        "promptreg Client, warm cache: get + render on the server": [
            (lambda n=n: client.get(n).render(customer="Ada")) for n in names],
        "MLflow load_prompt by alias + format": [
            (lambda n=n: mlflow.genai.load_prompt(f"prompts:/{n}@production").format(customer="Ada"))
            for n in names],
        "MLflow load_prompt by version (its cache) + format": [
            (lambda n=n: mlflow.genai.load_prompt(f"prompts:/{n}/1").format(customer="Ada"))
            for n in names],
    }
    results = {}
    for name, calls in sides.items():
        for call in calls:
            call()  # warm: indexes, caches, connections
        results[name] = timed(calls, rounds)
    base = results["MLflow load_prompt by alias + format"]
    cached = results["MLflow load_prompt by version (its cache) + format"]
    print("| side | one get + render (median) | MLflow by alias / this | MLflow by version / this |")
    print("|---|---|---|---|")
    for name, us in results.items():
        print(f"| {name} | {us:,.0f} us | {base / us:.1f}x | {cached / us:.2f}x |")
    client.close()


if __name__ == "__main__":
    main()
