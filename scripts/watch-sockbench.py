#!/usr/bin/env python3
"""Speed of one `leakless watch` sample against `ss -tanp`, at N loopback sockets.

A benchmark, not a test: it prints numbers for the README and asserts nothing.

    cargo build --release -p leakless-cli
    python3 scripts/watch-sockbench.py [--sockets 10000] [--runs 5] [--idle 30]

What it does, all in one run on this machine:
1. opens N loopback TCP sockets (N/2 connections, both ends held by this
   process), so every tool below sees the same table;
2. runs `ss -tanp` and `ss -tan` R times each (wall and CPU of the process);
3. runs `leakless watch --all --once --json` R times: a cold sample with pids,
   process start-up and the full /proc fd scan included (what `ss -p` does);
4. runs `leakless watch --all --json` for a few seconds and reads each
   sample's own cost (`cost.wall_ms`, `cost.cpu_ms`): the first sample is
   cold, the rest are the warm samples a running watch takes;
5. the same for `--pid` of this process (10k sockets of its own);
6. the CPU an idle `watch --pid` uses at a 1 s interval over --idle seconds,
   watching this process (10k sockets) and a sleeping process (no sockets) on
   the same host; with --json to /dev/null, and in the TUI under `script`
   when that is installed; and once more after closing the N sockets. Each
   twice, back to back: with the kernel's connection events (the default
   where allowed) and with sampling only (LEAKLESS_WATCH_EVENTS=off).
"""

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd, **kw):
    """Wall and CPU seconds of one run of cmd (output discarded)."""
    c0, t0 = child_cpu(), time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, **kw)
    return time.perf_counter() - t0, child_cpu() - c0


def open_sockets(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 1000
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard) if hard != resource.RLIM_INFINITY else want, hard))
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(4096)
    addr = lst.getsockname()
    held = [lst]
    for _ in range(n // 2):
        c = socket.create_connection(addr)
        s, _ = lst.accept()
        held += [c, s]
    return held


def ms(x):
    return f"{x * 1000:.1f} ms"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sockets", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--idle", type=int, default=30, help="seconds of idle watch to measure")
    ap.add_argument("--leakless", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "leakless"))
    a = ap.parse_args()
    if not os.path.exists(a.leakless):
        sys.exit(f"{a.leakless} not found: cargo build --release -p leakless-cli (or pass --leakless)")
    ll = a.leakless

    t0 = time.perf_counter()
    held = open_sockets(a.sockets)
    me = str(os.getpid())
    total = int(subprocess.run(["ss", "-tanH"], capture_output=True, text=True).stdout.count("\n"))
    print(f"# {len(held)} sockets opened by pid {me} in {time.perf_counter() - t0:.1f}s; {total} TCP sockets on the host")
    print(f"# {os.uname().release}, {os.cpu_count()} cores; leakless = {ll}\n")

    rows = []

    def bench(name, cmd):
        runs = [timed(cmd) for _ in range(a.runs)]
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        rows.append((name, wall, cpu))

    bench("ss -tanp (pids)", ["ss", "-tanp"])
    bench("ss -tan (no pids)", ["ss", "-tan"])
    bench("leakless watch --all --once --json (cold process, pids)", [ll, "watch", "--all", "--once", "--json"])

    def in_process(name, args, secs=4):
        out = subprocess.run([ll, "watch", "--json", "--interval", "200ms", "--for", f"{secs}s", *args], capture_output=True, text=True, check=True).stdout
        costs = [json.loads(l)["cost"] for l in out.splitlines() if json.loads(l)["type"] == "sample"]
        first, rest = costs[0], costs[1:]
        rows.append((f"{name}: first sample (cold cache)", first["wall_ms"] / 1000, first["cpu_ms"] / 1000))
        rows.append((
            f"{name}: warm sample (median of {len(rest)})",
            statistics.median(c["wall_ms"] for c in rest) / 1000,
            statistics.median(c["cpu_ms"] for c in rest) / 1000,
        ))

    in_process("watch --all", ["--all"])
    in_process("watch --pid (10k-socket process)", ["--pid", me])

    ss_wall = rows[0][1]
    print(f"| what (median of {a.runs} runs, {a.sockets} sockets) | wall | CPU | vs ss -tanp (wall) |")
    print("|---|---:|---:|---:|")
    for name, wall, cpu in rows:
        print(f"| {name} | {ms(wall)} | {ms(cpu)} | {ss_wall / wall:.1f}x |")

    # Idle CPU at a 1 s interval, with the kernel's connection events (the
    # default where allowed) and with sampling only, run back to back so the
    # two are measured under the same load.
    print(f"\n| idle watch, 1 s interval, {a.idle} s | CPU, events | CPU, sampling only | events / sampling | share of one core, events |")
    print("|---|---:|---:|---:|---:|")
    sampling_only = dict(os.environ, LEAKLESS_WATCH_EVENTS="off")
    sleeper = subprocess.Popen(["sleep", str(a.idle * 5 + 60)])
    try:
        cases = [
            ("--pid of the 10k-socket process, --json", [ll, "watch", "--pid", me, "--json", "--for", f"{a.idle}s"]),
            ("--pid of a process with no sockets, --json", [ll, "watch", "--pid", str(sleeper.pid), "--json", "--for", f"{a.idle}s"]),
        ]
        if shutil.which("script"):
            tui = f"{ll} watch --pid {me} --for {a.idle}s"
            cases.append(("--pid of the 10k-socket process, TUI (under script)", ["script", "-q", "-c", tui, "/dev/null"]))
        for name, cmd in cases:
            off_wall, off = timed(cmd, stdin=subprocess.DEVNULL, env=sampling_only)
            wall, cpu = timed(cmd, stdin=subprocess.DEVNULL)
            print(f"| {name} | {cpu:.3f} s | {off:.3f} s | {cpu / off:.2f}x | {cpu / wall * 100:.2f}% |")
        # The same idle watch once the bench's sockets are gone: its cost
        # follows the host's socket count, not the watched process's.
        for s in held:
            s.close()
        time.sleep(1)
        left = subprocess.run(["ss", "-tanH"], capture_output=True, text=True).stdout.count("\n")
        cmd = [ll, "watch", "--pid", str(sleeper.pid), "--json", "--for", f"{a.idle}s"]
        off_wall, off = timed(cmd, stdin=subprocess.DEVNULL, env=sampling_only)
        wall, cpu = timed(cmd, stdin=subprocess.DEVNULL)
        print(f"| --pid of a process with no sockets, --json, host back to {left} sockets | {cpu:.3f} s | {off:.3f} s | {cpu / off:.2f}x | {cpu / wall * 100:.2f}% |")
    finally:
        sleeper.kill()


if __name__ == "__main__":
    main()
