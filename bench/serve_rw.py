#!/usr/bin/env python3
"""Writes and replicas of `promptreg serve`, measured (called by bench/serve-writes and
bench/serve-follow; Python 3 standard library, git and wrk; reuses bench/serve.py's wrk runner).

    serve_rw.py writes --bin P --repo DIR --out DIR [--prompt ID] [--creates N]
                       [--clients N,N] [--duration S] [--rounds N] [--connections C]
                       [--threads T] [--max-other CORES]
    serve_rw.py follow --bin P --repo DIR --out DIR [--prompt ID] [--pushes N]
                       [--interval S] [--duration S] [--rounds N] [--connections C]
                       [--threads T] [--max-other CORES]
    serve_rw.py table  --out DIR

`writes` (issue 14, item 7): a copy of DIR served with `--allow-writes --auth`; creates of a
new version (`POST /v1/prompts/ID` with the file's YAML plus one comment line) one after the
other, then from N concurrent clients (each on a prompt of its own, one keep-alive connection
each); every answer checked (201, the version one more than the last, and the next GET of
that version 200: read-your-writes); the history's length and `git fsck` after. Then wrk's
GET of one version while nothing writes, while one client writes in a loop, and while N clients
do, rounds alternating. OUT/writes.json.

`follow` (issue 15, item 8): a bare clone of DIR is the remote, a clone of it the pusher, and
`promptreg serve --follow REMOTE --hook-secret-file F` the replica, under wrk's GET load the
whole time. Each push moves the prompt's default (`defaults.yaml`, one line) and is timed from
`git push` returning to the first GET of the prompt (polled every millisecond on a keep-alive
connection) that answers the new default; through a signed GitHub-style hook (`--interval 30`)
and through the interval alone (`--interval S`, no hook, pushes at random moments). Then wrk
while nothing is pushed against wrk while a push and its hook arrive every 0.5 s (fetch and
swap running). OUT/follow.json.

`table`: the results as Markdown, from OUT/writes.json and OUT/follow.json.
"""
import argparse
import hashlib
import hmac
import http.client
import importlib.util
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("serve_bench", os.path.join(HERE, "serve.py"))
sb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sb)
log = sb.log

TOKEN = "bench-write-token-" + "0" * 16
SECRET = "bench-hook-secret-0123456789abcdef"
GIT_ENV = dict(os.environ, GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@example.com",
               GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@example.com")


def git(repo, *argv, capture=False):
    out = subprocess.run(["git", "-C", repo, *argv], check=True, env=GIT_ENV,
                         stdout=subprocess.PIPE if capture else subprocess.DEVNULL, text=True)
    return out.stdout.strip() if capture else None


def pct(values, p):
    v = sorted(values)
    if not v:
        return None
    return v[min(len(v) - 1, max(0, int(round(p / 100 * len(v) + 0.5)) - 1))]


def summary(seconds):
    return {"n": len(seconds), "median_s": statistics.median(seconds), "p90_s": pct(seconds, 90),
            "p99_s": pct(seconds, 99), "max_s": max(seconds), "min_s": min(seconds),
            "samples_s": [round(s, 6) for s in seconds]}


# ---------------------------------------------------------------- a server


class Server:
    def __init__(self, bin_path, argv, log_path, env=None, cwd=None):
        self.log_path = log_path
        self.logf = open(log_path, "w")
        self.proc = subprocess.Popen([bin_path, *argv], stdout=subprocess.DEVNULL,
                                     stderr=self.logf, env=env or os.environ, cwd=cwd)
        t0 = time.monotonic()
        self.url = None
        while time.monotonic() - t0 < 300:
            with open(log_path) as f:
                first = f.readline()
            if first.startswith("listening on http://"):
                self.url = first.split()[2]
                break
            if self.proc.poll() is not None:
                raise SystemExit(f"serve exited: {open(log_path).read()}")
            time.sleep(0.05)
        if not self.url:
            raise SystemExit("serve printed no address")
        hostport = self.url.split("//")[1]
        self.host, self.port = hostport.split(":")[0], int(hostport.split(":")[1])
        self.startup = time.monotonic() - t0

    def conn(self):
        return http.client.HTTPConnection(self.host, self.port, timeout=60)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.logf.close()
        if rc != 0:
            log(f"  serve exited {rc} on SIGTERM (expected 0)")
        return rc


def request(conn, method, path, body=None, headers=None):
    h = dict(headers or {})
    if body is not None and not isinstance(body, bytes):
        body = json.dumps(body).encode()
        h.setdefault("Content-Type", "application/json")
    conn.request(method, path, body=body, headers=h)
    resp = conn.getresponse()
    data = resp.read()
    return resp.status, data


AUTH = {"Authorization": "Bearer " + TOKEN}


def wrk_target(name, url, pids, headers=None):
    return {"name": name, "url": url, "pids": pids, "headers": headers or {}}


class Wrk:
    """wrk in the background for a fixed time (its summary read when it ends)."""

    def __init__(self, target, duration, connections, threads, script_dir):
        self.result = None
        self.thread = threading.Thread(
            target=self._run, args=(target, duration, connections, threads, script_dir))
        self.thread.start()

    def _run(self, *a):
        self.result = sb.run_wrk(*a)

    def join(self):
        self.thread.join()
        return self.result


# ---------------------------------------------------------------- writes


def cmd_writes(args):
    os.makedirs(args.out, exist_ok=True)
    script_dir = os.path.join(args.out, "wrk")
    os.makedirs(script_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="bench-serve-writes-")
    results = {"prompt": args.prompt}
    server = None
    try:
        work = os.path.join(tmp, "medium")
        subprocess.run(["cp", "-a", args.repo, work], check=True)
        auth = os.path.join(tmp, "auth.yaml")
        with open(auth, "w") as f:
            f.write("tokens:\n  - name: bench-writer\n    token: %s\n"
                    "    email: writer@example.com\n    scopes: [read, write]\n" % TOKEN)
        env = dict(os.environ, GIT_COMMITTER_NAME="promptreg-server",
                   GIT_COMMITTER_EMAIL="server@example.com")
        server = Server(args.bin, ["-C", os.path.join(work, "prompts"), "serve", "--listen",
                                   "127.0.0.1:0", "--auth", auth, "--allow-writes"],
                        os.path.join(args.out, "serve-writes.log"), env=env)
        log(f"serve --allow-writes at {server.url}, ready after {server.startup:.2f} s")
        pids = [server.proc.pid]
        prompt_files = sorted(p for p in os.listdir(os.path.join(work, "prompts"))
                              if p.endswith(".prompt.yaml"))
        ids = [p[:-len(".prompt.yaml")] for p in prompt_files]
        sources = {}

        def source_of(pid):
            if pid not in sources:
                with open(os.path.join(work, "prompts", pid + ".prompt.yaml")) as f:
                    sources[pid] = f.read()
            return sources[pid]

        c = server.conn()
        status, body = request(c, "GET", f"/v1/prompts/{args.prompt}@latest", headers=AUTH)
        assert status == 200, (status, body)
        latest = json.loads(body)["version"]
        read_version = (latest + 1) // 2
        commits_before = int(git(work, "rev-list", "--count", "HEAD", capture=True))
        start_commit = git(work, "rev-parse", "HEAD", capture=True)
        counter = {"n": 0}
        lock = threading.Lock()
        problems = []

        def create(conn, pid, expect):
            with lock:
                counter["n"] += 1
                k = counter["n"]
            payload = {"message": f"bench: write {k} of {pid}",
                       "source": source_of(pid) + f"# bench write {k}\n"}
            t0 = time.monotonic()
            status, body = request(conn, "POST", f"/v1/prompts/{pid}", payload, AUTH)
            dt = time.monotonic() - t0
            if status != 201:
                problems.append(f"POST {pid}: {status} {body[:300]!r}")
                return dt, None
            got = json.loads(body)
            if expect is not None and got.get("version") != expect:
                problems.append(f"POST {pid}: version {got.get('version')}, expected {expect}")
            # Read-your-writes: the next GET of that version is there.
            s2, _ = request(conn, "GET", f"/v1/prompts/{pid}?version={got.get('version')}",
                            headers=AUTH)
            if s2 != 200:
                problems.append(f"GET {pid}?version={got.get('version')} after its write: {s2}")
            return dt, got.get("version")

        def versions_of(conn, pid):
            s, b = request(conn, "GET", f"/v1/prompts/{pid}@latest", headers=AUTH)
            return json.loads(b)["version"] if s == 200 else 0

        # -- sequential creates
        sb.wait_for_quiet(args.max_other)
        lat = []
        v = latest
        t0 = time.monotonic()
        for _ in range(args.creates):
            v += 1
            dt, _ = create(c, args.prompt, v)
            lat.append(dt)
        wall = time.monotonic() - t0
        results["sequential"] = {"clients": 1, "writes": args.creates, "wall_s": wall,
                                 "per_s": args.creates / wall, "latency": summary(lat)}
        log(f"  sequential: {args.creates} creates in {wall:.2f} s = "
            f"{args.creates / wall:.1f}/s, p50 {1000 * statistics.median(lat):.1f} ms, "
            f"max {1000 * max(lat):.1f} ms")

        # -- concurrent creates, each client on its own prompt
        others = [i for i in ids if i != args.prompt]
        results["concurrent"] = []
        for n in args.clients:
            sb.wait_for_quiet(args.max_other)
            mine = others[:n]
            per = max(1, args.creates // n)
            start = {pid: versions_of(c, pid) for pid in mine}
            lats = []
            barrier = threading.Barrier(n + 1)

            def client(pid):
                conn = server.conn()
                barrier.wait()
                for j in range(per):
                    dt, _ = create(conn, pid, start[pid] + j + 1)
                    with lock:
                        lats.append(dt)
                conn.close()

            threads = [threading.Thread(target=client, args=(pid,)) for pid in mine]
            for t in threads:
                t.start()
            barrier.wait()
            t0 = time.monotonic()
            for t in threads:
                t.join()
            wall = time.monotonic() - t0
            lost = [pid for pid in mine if versions_of(c, pid) != start[pid] + per]
            if lost:
                problems.append(f"{n} clients: versions missing on {lost}")
            results["concurrent"].append({"clients": n, "writes": n * per, "wall_s": wall,
                                          "per_s": n * per / wall, "latency": summary(lats)})
            log(f"  {n} clients: {n * per} creates in {wall:.2f} s = {n * per / wall:.1f}/s, "
                f"p50 {1000 * statistics.median(lats):.1f} ms, max {1000 * max(lats):.1f} ms")

        # -- reads while writes run
        url = f"{server.url}/v1/prompts/{args.prompt}?version={read_version}"
        target = wrk_target("get-version", url, pids, AUTH)
        sb.run_wrk(target, 2, args.connections, args.threads, script_dir)  # warm-up
        writers_n = max(args.clients)
        conds = [("idle", 0), ("1-writer", 1), (f"{writers_n}-writers", writers_n)]
        reads = {name: [] for name, _ in conds}
        for rnd in range(args.rounds):
            order = conds if rnd % 2 == 0 else list(reversed(conds))
            for name, nw in order:
                sb.wait_for_quiet(args.max_other)
                stop = threading.Event()
                done = []

                def writer(pid):
                    conn = server.conn()
                    while not stop.is_set():
                        dt, ver = create(conn, pid, None)
                        with lock:
                            done.append(dt)
                    conn.close()

                ws = [threading.Thread(target=writer, args=(others[-1 - i],)) for i in range(nw)]
                for w in ws:
                    w.start()
                r = sb.run_wrk(target, args.duration, args.connections, args.threads,
                               script_dir)
                stop.set()
                for w in ws:
                    w.join()
                r["round"] = rnd
                r["writes"] = len(done)
                r["writes_per_s"] = len(done) / (r["duration_us"] / 1e6)
                r["write_p50_s"] = statistics.median(done) if done else None
                r["write_max_s"] = max(done) if done else None
                reads[name].append(r)
                log(f"  round {rnd + 1}: reads {name:<10} {r['rps']:>9.0f} req/s  "
                    f"p99 {r['p99_us'] / 1000:7.2f} ms  max {r['max_us'] / 1000:7.1f} ms  "
                    f"errors {r['errors']}  writes {r['writes_per_s']:.1f}/s  "
                    f"cores: server {r['server_cores']:.2f} wrk {r['wrk_cores']:.2f} "
                    f"other {r['other_cores']:.2f}")
        results["reads"] = [[name, reads[name]] for name, _ in conds]
        results["read_version"] = read_version
        # -- the repository afterwards
        total = counter["n"] - len([p for p in problems if p.startswith("POST")])
        commits_after = int(git(work, "rev-list", "--count", "HEAD", capture=True))
        merges = git(work, "rev-list", "--merges", "--count", f"{start_commit}..HEAD",
                     capture=True)
        linear = git(work, "rev-list", "--count", "--first-parent", f"{start_commit}..HEAD",
                     capture=True)
        server.stop()
        server = None
        fsck = subprocess.run(["git", "-C", work, "fsck", "--no-dangling", "--connectivity-only"],
                              capture_output=True, text=True)
        # The working copy is never touched: the files written through the API are on disk
        # as they were (git status shows them as changes against the new commits).
        touched = []
        for pid, text in sources.items():
            with open(os.path.join(work, "prompts", pid + ".prompt.yaml")) as f:
                if f.read() != text:
                    touched.append(pid)
        results["repo"] = {"writes_answered_201": total, "commits_added":
                           commits_after - commits_before, "merges": int(merges),
                           "fsck_ok": fsck.returncode == 0, "fsck_stderr": fsck.stderr[-500:],
                           "first_parent_commits_added": int(linear),
                           "working_copy_files_changed": touched}
        results["problems"] = problems
        log(f"  repository: {commits_after - commits_before} commits for {total} writes, "
            f"fsck {'clean' if fsck.returncode == 0 else 'FAILED'}, "
            f"{len(touched)} files changed on disk; problems: {len(problems)}")
        for p in problems[:10]:
            log("    " + p)
        took = []
        with open(os.path.join(args.out, "serve-writes.log")) as f:
            for line in f:
                if "snapshot swapped in" in line and "took_ms=" in line:
                    took.append(int(line.split("took_ms=")[1].split()[0]))
        if took:
            results["snapshot_took_ms"] = {"n": len(took), "median": statistics.median(took),
                                           "max": max(took)}
        sb.save_json(os.path.join(args.out, "writes.json"), results)
    finally:
        if server:
            server.proc.kill()
            server.proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------- follow


def signed_hook(conn, after):
    body = json.dumps({"ref": "refs/heads/main", "after": after}).encode()
    sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return request(conn, "POST", "/v1/hooks/push", body,
                   {"X-Hub-Signature-256": sig, "X-GitHub-Event": "push",
                    "Content-Type": "application/json"})


class Pusher:
    def __init__(self, bin_path, clone, prompt, nversions):
        self.bin, self.clone, self.prompt, self.n = bin_path, clone, prompt, nversions
        self.current = None

    def push(self):
        """Moves the default to another version, commits, pushes: (version, seconds of git
        push, the commit, when the push returned)."""
        choices = [v for v in range(1, self.n + 1) if v != self.current]
        v = random.choice(choices)
        subprocess.run([self.bin, "-C", os.path.join(self.clone, "prompts"), "set-default",
                        self.prompt, str(v), "--commit"], check=True, env=GIT_ENV,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        commit = git(self.clone, "rev-parse", "HEAD", capture=True)
        t0 = time.monotonic()
        git(self.clone, "push", "-q", "origin", "HEAD:main")
        t1 = time.monotonic()
        self.current = v
        return v, t1 - t0, commit, t1


def wait_default(conn, prompt, version, deadline_s=120):
    t0 = time.monotonic()
    polls = 0
    while True:
        status, body = request(conn, "GET", f"/v1/prompts/{prompt}")
        polls += 1
        if status == 200 and json.loads(body).get("version") == version:
            return time.monotonic(), polls
        if time.monotonic() - t0 > deadline_s:
            raise SystemExit(f"follow: default v{version} not served after {deadline_s} s")
        time.sleep(0.001)


def cmd_follow(args):
    os.makedirs(args.out, exist_ok=True)
    script_dir = os.path.join(args.out, "wrk")
    os.makedirs(script_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="bench-serve-follow-")
    results = {"prompt": args.prompt, "interval_s": args.interval}
    server = None
    try:
        remote = os.path.join(tmp, "remote.git")
        subprocess.run(["git", "clone", "-q", "--bare", args.repo, remote], check=True)
        git(remote, "config", "gc.auto", "0")
        clone = os.path.join(tmp, "pusher")
        subprocess.run(["git", "clone", "-q", remote, clone], check=True)
        git(clone, "config", "gc.auto", "0")
        secret = os.path.join(tmp, "hook-secret")
        with open(secret, "w") as f:
            f.write(SECRET + "\n")
        nversions = int(git(clone, "rev-list", "--count", "--first-parent", "HEAD", "--",
                            f"prompts/{args.prompt}.prompt.yaml", capture=True))
        read_version = (nversions + 1) // 2
        pusher = Pusher(args.bin, clone, args.prompt, nversions)

        def start(name, interval, hook):
            # The registry is the `prompts/` folder of the repository, so the replica is a
            # clone of the remote (origin: the bare path) served from that folder; --follow
            # with the bare path then uses the clone as it is.
            root = os.path.join(tmp, name)
            subprocess.run(["git", "clone", "-q", remote, root], check=True)
            git(root, "config", "gc.auto", "0")
            argv = ["-C", os.path.join(root, "prompts"), "serve", "--listen", "127.0.0.1:0", "--follow", remote,
                    "--interval", str(interval)]
            if hook:
                argv += ["--hook-secret-file", secret]
            s = Server(args.bin, argv, os.path.join(args.out, f"serve-{name}.log"))
            log(f"replica {name} (--interval {interval}) at {s.url}, ready after "
                f"{s.startup:.2f} s")
            return s

        def pushes(server, n, hook, gap):
            samples = []
            c = server.conn()
            for k in range(n):
                if gap:
                    time.sleep(random.uniform(0, gap))
                v, push_s, commit, t_pushed = pusher.push()
                hook_s = None
                if hook:
                    hc = server.conn()
                    status, body = signed_hook(hc, commit)
                    hc.close()
                    hook_s = time.monotonic() - t_pushed
                    if status != 202:
                        raise SystemExit(f"follow: the hook answered {status}: {body!r}")
                t_seen, polls = wait_default(c, args.prompt, v)
                samples.append({"seconds": t_seen - t_pushed, "push_s": push_s,
                                "hook_answered_s": hook_s, "polls": polls, "version": v})
                log(f"  push {k + 1}: default v{v} served {1000 * (t_seen - t_pushed):7.1f} ms "
                    f"after git push returned (the push took {1000 * push_s:.0f} ms"
                    + (f", the hook answered after {1000 * hook_s:.1f} ms" if hook else "")
                    + ")")
            c.close()
            return samples

        def under_load(server, fn, seconds_hint):
            url = f"{server.url}/v1/prompts/{args.prompt}?version={read_version}"
            t = wrk_target("replica-get-version", url, [server.proc.pid])
            w = Wrk(t, seconds_hint, args.connections, args.threads, script_dir)
            time.sleep(0.5)
            out = fn()
            r = w.join()
            return out, r

        # -- through the hook, readers under load
        server = start("replica-hook", 30, True)
        sb.run_wrk(wrk_target("warm", f"{server.url}/v1/prompts/{args.prompt}?version="
                              f"{read_version}", []), 2, args.connections, args.threads,
                   script_dir)
        sb.wait_for_quiet(args.max_other)
        est = int(args.pushes * 0.6) + 5
        samples, r = under_load(server, lambda: pushes(server, args.pushes, True, 0.3), est)
        results["hook"] = {"pushes": samples, "summary": summary([s["seconds"] for s in samples]),
                           "push_s": summary([s["push_s"] for s in samples]), "readers": r}
        log(f"  hook: median {1000 * results['hook']['summary']['median_s']:.0f} ms, worst "
            f"{1000 * results['hook']['summary']['max_s']:.0f} ms; readers {r['rps']:.0f} req/s "
            f"(wrk ran {r['duration_us'] / 1e6:.0f} s, longer than the pushes)")

        # -- reads during fetch and swap, against idle
        reads = {"idle": [], "pushing": []}
        url = f"{server.url}/v1/prompts/{args.prompt}?version={read_version}"
        target = wrk_target("replica-get-version", url, [server.proc.pid])
        for rnd in range(args.rounds):
            conds = ["idle", "pushing"] if rnd % 2 == 0 else ["pushing", "idle"]
            for cond in conds:
                sb.wait_for_quiet(args.max_other)
                stop = threading.Event()
                count = {"pushes": 0, "seen_s": []}

                def loop():
                    c = server.conn()
                    while not stop.is_set():
                        v, _, commit, t_pushed = pusher.push()
                        hc = server.conn()
                        signed_hook(hc, commit)
                        hc.close()
                        t_seen, _ = wait_default(c, args.prompt, v)
                        count["pushes"] += 1
                        count["seen_s"].append(t_seen - t_pushed)
                        stop.wait(max(0.0, 0.5 - (time.monotonic() - t_pushed)))
                    c.close()

                th = threading.Thread(target=loop) if cond == "pushing" else None
                if th:
                    th.start()
                rr = sb.run_wrk(target, args.duration, args.connections, args.threads,
                                script_dir)
                stop.set()
                if th:
                    th.join()
                rr["round"] = rnd
                rr["pushes"] = count["pushes"]
                reads[cond].append(rr)
                log(f"  round {rnd + 1}: reads {cond:<8} {rr['rps']:>9.0f} req/s  "
                    f"p99 {rr['p99_us'] / 1000:7.2f} ms  max {rr['max_us'] / 1000:7.1f} ms  "
                    f"errors {rr['errors']}  pushes {count['pushes']}  "
                    f"cores: server {rr['server_cores']:.2f} wrk {rr['wrk_cores']:.2f} "
                    f"other {rr['other_cores']:.2f}")
        results["reads"] = [[name, reads[name]] for name in ("idle", "pushing")]
        server.stop()
        server = None

        # -- through the interval alone
        server = start("replica-interval", args.interval, False)
        sb.wait_for_quiet(args.max_other)
        est = int(args.pushes * (args.interval * 1.5 + 0.3)) + 5
        samples, r = under_load(server, lambda: pushes(server, args.pushes, False,
                                                      args.interval), est)
        results["interval"] = {"pushes": samples,
                               "summary": summary([s["seconds"] for s in samples]),
                               "readers": r}
        s = results["interval"]["summary"]
        log(f"  interval {args.interval} s: median {s['median_s']:.2f} s "
            f"({s['median_s'] / args.interval:.2f}x the interval), worst {s['max_s']:.2f} s "
            f"({s['max_s'] / args.interval:.2f}x)")
        server.stop()
        server = None
        took = []
        for name in ("replica-hook", "replica-interval"):
            with open(os.path.join(args.out, f"serve-{name}.log")) as f:
                for line in f:
                    if "snapshot swapped in" in line and "took_ms=" in line:
                        took.append(int(line.split("took_ms=")[1].split()[0]))
        if took:
            results["snapshot_took_ms"] = {"n": len(took), "median": statistics.median(took),
                                           "max": max(took)}
        sb.save_json(os.path.join(args.out, "follow.json"), results)
    finally:
        if server:
            server.proc.kill()
            server.proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------- table


def ms(s):
    return "-" if s is None else f"{1000 * s:.1f} ms" if s < 10 else f"{s:.1f} s"


def reads_rows(reads):
    print("| reads (wrk GET one version) | req/s (rounds) | p99 | max | errors | "
          "cores: server / wrk / other |")
    print("|---|---:|---:|---:|---:|---|")
    base = None
    for name, runs in reads:
        rps = statistics.median(r["rps"] for r in runs)
        base = base or rps
        extra = ""
        if runs and "writes_per_s" in runs[0]:
            extra = f", {statistics.median(r['writes_per_s'] for r in runs):.1f} writes/s"
        if runs and "pushes" in runs[0]:
            extra = f", {sum(r['pushes'] for r in runs)} pushes"
        each = ", ".join(f"{r['rps']:,.0f}" for r in runs)
        print(f"| {name}{extra} | {rps:,.0f}/s ({each}; "
              f"{rps / base:.2f}x) | {sb.fmt_ms(statistics.median(r['p99_us'] for r in runs))} "
              f"| {sb.fmt_ms(max(r['max_us'] for r in runs))} | {sum(r['errors'] for r in runs)} "
              f"| {statistics.median(r['server_cores'] for r in runs):.2f} / "
              f"{statistics.median(r['wrk_cores'] for r in runs):.2f} / "
              f"{statistics.median(r['other_cores'] for r in runs):.2f} |")
    print()


def cmd_table(args):
    w = sb.load_json(os.path.join(args.out, "writes.json"), None)
    f = sb.load_json(os.path.join(args.out, "follow.json"), None)
    if w:
        print("| creates (`POST /v1/prompts/ID`) | creates/s | p50 | p99 | max |")
        print("|---|---:|---:|---:|---:|")
        for row in [w["sequential"], *w["concurrent"]]:
            l = row["latency"]
            print(f"| {row['clients']} client{'s' if row['clients'] > 1 else ''}, "
                  f"{row['writes']} writes | {row['per_s']:.1f} | {ms(l['median_s'])} "
                  f"| {ms(l['p99_s'])} | {ms(l['max_s'])} |")
        print()
        reads_rows(w["reads"])
        r = w["repo"]
        print(f"Repository after: {r['commits_added']} commits for {r['writes_answered_201']} "
              f"201s, {r['merges']} merges, fsck {'clean' if r['fsck_ok'] else 'FAILED'}, "
              f"{len(r['working_copy_files_changed'])} files of the working copy changed; "
              f"{len(w['problems'])} problems: "
              + ("; ".join(w["problems"][:5]) or "none") + "." +
              (f" Snapshots built: median {w['snapshot_took_ms']['median']} ms, max "
               f"{w['snapshot_took_ms']['max']} ms ({w['snapshot_took_ms']['n']})."
               if w.get("snapshot_took_ms") else ""))
        print()
    if f:
        h, i = f["hook"]["summary"], f["interval"]["summary"]
        iv = f["interval_s"]
        print("| `git push` returns -> first GET with the new default | median | p90 | worst |")
        print("|---|---:|---:|---:|")
        print(f"| push + signed hook (`--interval 30`), {h['n']} pushes | {ms(h['median_s'])} "
              f"| {ms(h['p90_s'])} | {ms(h['max_s'])} |")
        print(f"| interval alone (`--interval {iv}`), {i['n']} pushes | {ms(i['median_s'])} "
              f"({i['median_s'] / iv:.2f}x) | {ms(i['p90_s'])} ({i['p90_s'] / iv:.2f}x) "
              f"| {ms(i['max_s'])} ({i['max_s'] / iv:.2f}x) |")
        print(f"| (the `git push` itself) | {ms(f['hook']['push_s']['median_s'])} | "
              f"{ms(f['hook']['push_s']['p90_s'])} | {ms(f['hook']['push_s']['max_s'])} |")
        print()
        for k in ("hook", "interval"):
            r = f[k]["readers"]
            print(f"Readers during the {k} pushes: {r['rps']:,.0f} req/s, p99 "
                  f"{sb.fmt_ms(r['p99_us'])}, max {sb.fmt_ms(r['max_us'])}, {r['errors']} errors.")
        print()
        reads_rows(f["reads"])
        if f.get("snapshot_took_ms"):
            t = f["snapshot_took_ms"]
            print(f"Snapshots built on the replicas: median {t['median']} ms, max {t['max']} ms "
                  f"({t['n']}).")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("writes", "follow"):
        a = sub.add_parser(name)
        a.add_argument("--bin", required=True)
        a.add_argument("--repo", required=True)
        a.add_argument("--out", required=True)
        a.add_argument("--prompt", default="chat-reply")
        a.add_argument("--duration", type=int, default=10)
        a.add_argument("--rounds", type=int, default=2)
        a.add_argument("--connections", type=int, default=64)
        a.add_argument("--threads", type=int, default=2)
        a.add_argument("--max-other", type=float, default=0.3)
        if name == "writes":
            a.add_argument("--creates", type=int, default=100)
            a.add_argument("--clients", default="4,16",
                           type=lambda s: [int(x) for x in s.split(",")])
        else:
            a.add_argument("--pushes", type=int, default=20)
            a.add_argument("--interval", type=int, default=2)
    a = sub.add_parser("table")
    a.add_argument("--out", required=True)
    args = p.parse_args()
    {"writes": cmd_writes, "follow": cmd_follow, "table": cmd_table}[args.cmd](args)


if __name__ == "__main__":
    main()
