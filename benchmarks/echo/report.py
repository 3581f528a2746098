#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes docs/benchmarks.md and docs/benchmarks.png from the results of scripts/bench.sh.

Input (the --results directory): echo.tsv (loadgen lines, one per server per round per cell),
callgrind.tsv, sections/*.md (Markdown fragments of the other run.sh scripts), load_before,
load_after, seconds. Medians are over the rounds of one cell; ratios are of medians.
"""
import argparse
import datetime
import os
import platform
import re
import shutil
import statistics
import subprocess

SERVERS = ["evio-io_uring", "evio-io_uring-poll", "evio-epoll", "asio-epoll", "asio-io_uring",
           "raw-epoll", "raw-uring"]
# evio on io_uring twice: as users get it, and with the documented reactor_options::busy_poll.
URING_ROWS = {"evio-io_uring": "", "evio-io_uring-poll": "-poll"}
PEERS = ["asio-epoll", "asio-io_uring", "raw-epoll", "raw-uring"]
ASIO = ["asio-epoll", "asio-io_uring"]
RAWS = ["raw-uring", "raw-epoll"]


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:  # noqa: BLE001 - a missing tool leaves the field empty
        return ""


def read(path, default=""):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return default


def header_define(path, name):
    m = re.search(r"#\s*define\s+" + name + r"\s+(\S+)", read(path))
    return m.group(1) if m else "?"


def machine(root, results):
    cpu = sh("lscpu | sed -n 's/^Model name: *//p'") or platform.processor()
    asio = header_define("/usr/include/asio/version.hpp", "ASIO_VERSION")
    if asio.isdigit():
        v = int(asio)
        asio = f"{v // 100000}.{v // 100 % 1000}.{v % 100}"
    return [
        ("CPU", f"{cpu}, {os.cpu_count()} cores (servers on CPU 0, clients on CPU 1)"),
        ("Kernel", platform.release()),
        ("OS", sh(". /etc/os-release && echo $PRETTY_NAME")),
        ("Compilers", f"{sh('g++ --version | head -1')} (the build); {sh('clang++ --version | head -1')}"),
        ("Build", "CMake Release, -O2 -DNDEBUG"),
        ("evio", f"{header_define(os.path.join(root, 'include/evio/version.hpp'), 'EVIO_VERSION_STRING').strip(chr(34))}"
                 f" (git {read(os.path.join(results, 'git_rev')) or sh('git -C ' + root + ' rev-parse --short HEAD')}),"
                 " EVIO_CONTRACTS="
                 f"{header_define(os.path.join(root, 'include/evio/config.hpp'), 'EVIO_CONTRACTS')}"
                 " (the default users get)"),
        ("liburing", sh("pkg-config --modversion liburing")),
        ("Asio", f"{asio} (Debian libasio-dev, standalone)"),
        ("valgrind", sh("valgrind --version")),
        ("Date", read(os.path.join(results, "date")) or
         datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
    ]


warmup_errors = {}  # {(conns, size): {server: errors during the warm-up}}


def load_echo(path):
    """{(conns, size): {server: [row dicts]}} in file order (measured rounds only)."""
    cells = {}
    for line in read(path).splitlines():
        f = line.split("\t")
        if not f or f[0] != "R":
            continue
        row = {"round": int(f[1]), "server": f[2], "conns": int(f[3]), "size": int(f[4]),
               "msgs": int(f[5]), "rate": float(f[7]), "mib": float(f[8]), "p50": float(f[9]),
               "p99": float(f[10]), "p999": float(f[11]), "errors": int(f[12]), "cpu": float(f[13]),
               "user": float(f[14]) if len(f) > 14 else -1.0}
        if row["round"] == 0:  # warm-up: only its errors count
            warm = warmup_errors.setdefault((row["conns"], row["size"]), {})
            warm[row["server"]] = warm.get(row["server"], 0) + row["errors"]
            continue
        cells.setdefault((row["conns"], row["size"]), {}).setdefault(row["server"], []).append(row)
    return cells


def med(rows, key):
    vals = [r[key] for r in rows if r[key] >= 0]
    return statistics.median(vals) if vals else float("nan")


def user_share(rows):
    """Percent of the server's CPU time spent in user space over all rounds (its own code; the
    rest is the kernel's), from /proc ticks summed over the rounds; nan when not measured."""
    cpu = sum(r["cpu"] * r["msgs"] for r in rows if r["cpu"] >= 0 and r["user"] >= 0)
    user = sum(r["user"] * r["msgs"] for r in rows if r["cpu"] >= 0 and r["user"] >= 0)
    return 100.0 * user / cpu if cpu > 0 else float("nan")


def fmt_size(n):
    return f"{n // 1024} KiB" if n >= 1024 and n % 1024 == 0 else f"{n} B"


def fmt_num(x, digits=0):
    if x != x:  # NaN
        return "-"
    return f"{x:,.{digits}f}"


def verdict(ok, detail):
    return ("**met**" if ok else "**missed**") + f" ({detail})"


def echo_section(cells, out):
    out.append("## Echo: msgs/s, server CPU per message, ratios\n")
    out.append("Per cell: median over the rounds of messages per second (one message = S bytes sent "
               "and the S-byte echo verified), the server's CPU time per message (utime+stime of "
               "the server process over the interval, /proc/PID/stat, 10 ms ticks), the share of it "
               "spent in user space (the server's own code, over all rounds; the rest is the "
               "kernel's), p50/p99 latency, "
               "the spread of msgs/s over the rounds ((max - min) / median: the noise), "
               "and the ratio of each server's msgs/s to the best peer of that cell (best of Asio "
               "epoll/io_uring and raw epoll/liburing; **bold** = best peer).\n")
    summary = {"uring_best": [], "epoll_raw": [], "cpu_asio": [], "uring_best-poll": [],
               "cpu_asio-poll": [], "raw_best": {}, "raw_cpu": {}}
    for (conns, size) in sorted(cells):
        per = cells[(conns, size)]
        rates = {s: med(per[s], "rate") for s in per}
        peers = {s: rates[s] for s in PEERS if s in rates}
        best = max(peers, key=peers.get) if peers else None
        out.append(f"### {conns} connection{'s' if conns != 1 else ''} x {fmt_size(size)}\n")
        out.append("| server | msgs/s | spread | MiB/s | CPU us/msg | user | p50 us | p99 us | vs best peer | errors |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for s in SERVERS:
            if s not in per:
                continue
            rows = per[s]
            ratio = rates[s] / peers[best] if best and peers[best] > 0 else float("nan")
            name = f"**{s}**" if s == best else s
            vals = [r["rate"] for r in rows]
            spread = (max(vals) - min(vals)) / rates[s] * 100 if rates[s] > 0 else float("nan")
            out.append(f"| {name} | {fmt_num(rates[s])} | {fmt_num(spread)} % | {fmt_num(med(rows, 'mib'), 1)} | "
                       f"{fmt_num(med(rows, 'cpu'), 2)} | {fmt_num(user_share(rows))} % | "
                       f"{fmt_num(med(rows, 'p50'), 1)} | "
                       f"{fmt_num(med(rows, 'p99'), 1)} | {fmt_num(ratio, 2)} | "
                       f"{sum(r['errors'] for r in rows) + warmup_errors.get((conns, size), {}).get(s, 0)} |")
        extra = []
        for row, suffix in URING_ROWS.items():
            if row in rates and best:
                r = rates[row] / peers[best]
                summary["uring_best" + suffix].append((conns, size, r, best))
        # The same bars for the raw servers (the limit): each against the best of the *other*
        # peers, and its CPU per message against Asio's.
        for raw in RAWS:
            others = {p: v for p, v in peers.items() if p != raw}
            if raw in rates and others and max(others.values()) > 0:
                o = max(others, key=others.get)
                summary["raw_best"].setdefault(raw, []).append((conns, size, rates[raw] / others[o], o))
        if "evio-epoll" in rates and "raw-epoll" in rates and rates["raw-epoll"] > 0:
            r = rates["evio-epoll"] / rates["raw-epoll"]
            summary["epoll_raw"].append((conns, size, r))
            extra.append(f"evio-epoll / raw-epoll = {r:.2f}")
        asio_cpu = {s: med(per[s], "cpu") for s in ASIO if s in per}
        asio_cpu = {s: v for s, v in asio_cpu.items() if v == v and v > 0}
        for row, suffix in URING_ROWS.items():
            if row in per and conns >= 16 and asio_cpu:
                a = min(asio_cpu, key=asio_cpu.get)
                r = med(per[row], "cpu") / asio_cpu[a]
                summary["cpu_asio" + suffix].append((conns, size, r, a))
                extra.append(f"{row} CPU/msg / {a} = {r:.2f}")
        for raw in RAWS:
            if raw in per and conns >= 16 and asio_cpu:
                a = min(asio_cpu, key=asio_cpu.get)
                summary["raw_cpu"].setdefault(raw, {})[(conns, size)] = (
                    med(per[raw], "cpu") / asio_cpu[a], user_share(per[raw]))
        if extra:
            out.append("\n" + "; ".join(extra) + ".")
        out.append("")
    return summary


def paired(per, a, b):
    """Median and range over the rounds of a's msgs/s / b's msgs/s in the same round."""
    ra = {r["round"]: r["rate"] for r in per.get(a, [])}
    rb = {r["round"]: r["rate"] for r in per.get(b, [])}
    rr = [ra[k] / rb[k] for k in ra if k in rb and rb[k] > 0]
    if not rr:
        return None
    return statistics.median(rr), min(rr), max(rr)


LIMIT_PAIRS = [("evio-io_uring", "raw-uring"), ("evio-io_uring-poll", "raw-uring"),
               ("evio-epoll", "raw-epoll"), ("raw-uring", "raw-epoll")]


def limits_section(cells, out):
    """Each evio backend against the raw server of its own backend, round by round."""
    pairs = [(a, b) for a, b in LIMIT_PAIRS if any(a in per and b in per for per in cells.values())]
    if not pairs:
        return
    out.append("## Against the limit of each backend, round by round\n")
    out.append("The raw servers stand for what a backend can do. Each figure is the median over the "
               "rounds of one server's msgs/s divided by the other's in the same round (servers of "
               "a round run seconds apart, so a drift of the machine cancels), with the lowest and "
               "highest round in brackets. The last column compares the two limits: below 1.00, "
               "raw liburing loses to raw epoll in that cell, and an io_uring server would have to "
               "beat its own backend's limit to lead it.\n")
    out.append("| cell | " + " | ".join(f"{a} / {b}" for a, b in pairs) + " |")
    out.append("|---|" + "---:|" * len(pairs))
    for (conns, size) in sorted(cells):
        per = cells[(conns, size)]
        vals = []
        for a, b in pairs:
            p = paired(per, a, b)
            vals.append("-" if p is None else f"{p[0]:.2f} [{p[1]:.2f}-{p[2]:.2f}]")
        out.append(f"| {conns} x {fmt_size(size)} | " + " | ".join(vals) + " |")
    out.append("")


def callgrind_section(path, out):
    rows = {}
    for line in read(path).splitlines():
        f = line.split("\t")
        if len(f) == 6 and not f[0].startswith("#"):
            rows[f[0]] = (int(f[1]), int(f[2] or 0), int(f[3]), int(f[4] or 0), float(f[5]))
    if not rows:
        return {}
    n1, n2 = next(iter(rows.values()))[0], next(iter(rows.values()))[2]
    out.append("## Callgrind: user-space instructions per echoed message\n")
    out.append(f"16 connections x 64 B, the same load generator in lockstep (`--lockstep`: a "
               f"burst of one message per connection, the next when all 16 echoes are back, so "
               f"every server sees the same bursts); each server runs under "
               f"`valgrind --tool=callgrind` twice and exits after {n1:,} and after {n2:,} reads "
               f"(one read = one message here). Instructions per message = (I2 - I1) / "
               f"({n2:,} - {n1:,}): start-up and shut-down cancel out. Kernel work is not "
               f"counted (callgrind sees user space only).\n")
    out.append("| server | instructions (N1) | instructions (N2) | per message | start-up + shut-down |")
    out.append("|---|---:|---:|---:|---:|")
    for s in SERVERS:
        if s in rows:
            r = rows[s]
            out.append(f"| {s} | {r[1]:,} | {r[3]:,} | {r[4]:,.0f} | {r[1] - r[0] * r[4]:,.0f} |")
    out.append("")
    profile_section(os.path.dirname(path), rows, n1, n2, out)
    return {s: rows[s][4] for s in rows}


def annotate(path):
    """{function: instructions} from callgrind_annotate (inclusive of nothing: self cost)."""
    text = sh(f"callgrind_annotate --threshold=100 '{path}'")
    costs = {}
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) \([\s\d.]+%\)\s+(.*)", line)
        if m and "PROGRAM TOTALS" not in line:
            name = re.sub(r" \[[^\]]*\]$", "", m.group(2))
            name = re.sub(r"^(\?\?\?|\./[^:]*):", "", name)
            name = name.replace("(anonymous namespace)::", "")
            name = re.sub(r"\(.*", "", name).strip() or "?"  # drop parameter lists
            costs[name] = costs.get(name, 0) + int(m.group(1).replace(",", ""))
    return costs


def profile_section(results, rows, n1, n2, out):
    """Per function self instructions per message of the evio servers (N2 run minus N1 run)."""
    if not shutil.which("callgrind_annotate"):
        return
    for s in ("evio-epoll", "evio-io_uring"):
        if s not in rows:
            continue
        a = annotate(os.path.join(results, f"callgrind.{s}.{n1}.out"))
        b = annotate(os.path.join(results, f"callgrind.{s}.{n2}.out"))
        per = sorted(((b.get(k, 0) - a.get(k, 0)) / (n2 - n1), k) for k in set(a) | set(b))
        top = [(v, k) for v, k in reversed(per) if v >= 1][:10]
        if not top:
            continue
        out.append(f"Where {s} spends them (self instructions per message, top functions):\n")
        out.append("| function | per message |")
        out.append("|---|---:|")
        out.extend(f"| `{k[:90]}` | {v:,.0f} |" for v, k in top)
        out.append("")


def syscalls_section(path, out):
    rows = [l.split("\t") for l in read(path).splitlines() if l and not l.startswith("#")]
    rows = [r for r in rows if len(r) == 4]
    if not rows:
        return
    out.append("## System calls per echoed message\n")
    out.append(f"16 connections x 64 B, the client in lockstep as above; `perf stat -e raw_syscalls:sys_enter` counts every system call "
               f"of the server while it echoes {int(rows[0][1]):,} messages (`--max-reads`), start-up "
               f"included (a few dozen calls). Every call pays the kernel entry and exit whatever it "
               f"does, so this column explains wall-clock gaps that the user-space instruction "
               f"counts do not. For the io_uring servers it depends on how many completions arrive "
               f"per wait, so it moves with timing more than the instruction counts do.\n")
    out.append("| server | system calls | per message |")
    out.append("|---|---:|---:|")
    order = {s: i for i, s in enumerate(SERVERS)}
    for r in sorted(rows, key=lambda r: order.get(r[0], 99)):
        out.append(f"| {r[0]} | {int(r[2]):,} | {float(r[3]):.2f} |")
    out.append("")


def fmt_worst(x):
    """Two decimals, or three when two would round a miss onto the threshold (0.966 -> 0.97)."""
    return f"{x:.3f}" if round(x, 2) in (0.90, 0.97, 1.0) else f"{x:.2f}"


def raw_best_note(summary):
    """The raw servers against the same bar: each against the best of the other peers."""
    parts = []
    for raw, rows in summary.get("raw_best", {}).items():
        met = sum(1 for t in rows if t[2] >= 1.0)
        worst = min(rows, key=lambda t: t[2])
        parts.append(f"{raw} {met}/{len(rows)} (worst {worst[2]:.2f}x at {worst[0]} x {fmt_size(worst[1])})")
    if not parts:
        return ""
    return (". The same bar for the raw servers, each against the best of the other peers: " +
            ", ".join(parts) + " (a server must beat the best of four noisy figures in each cell)")


def raw_cpu_note(summary, ca):
    """The raw servers against the CPU bar, in the cells evio-io_uring misses."""
    missed = [(t[0], t[1]) for t in ca if t[2] > 0.90]
    raws = summary.get("raw_cpu", {})
    if not missed or not raws:
        return ""
    cells = []
    for cell in missed:
        have = [raw for raw in raws if cell in raws[raw]]
        vals = [f"{raw} {raws[raw][cell][0]:.2f}x (user space {fmt_num(raws[raw][cell][1])} %)"
                for raw in have]
        beyond = all(raws[raw][cell][0] > 0.90 for raw in have)
        cells.append(f"{cell[0]} x {fmt_size(cell[1])}: " + ", ".join(vals) +
                     (", both above 0.90x" if beyond and len(have) > 1 else ""))
    return (". The raw servers, whose own code is almost none of their CPU time, in the cells "
            "evio-io_uring misses: " + "; ".join(cells))


def targets_section(summary, cg, out):
    out.append("## Targets (issue 7)\n")
    lines = []
    for suffix, how in (("", "as users get it (evio-io_uring)"),
                        ("-poll", "with busy_poll = 200 us, adaptive (evio-io_uring-poll)")):
        ub = summary.get("uring_best" + suffix, [])
        if ub:
            worst = min(ub, key=lambda t: t[2])
            met = sum(1 for t in ub if t[2] >= 1.0)
            lines.append(f"evio on io_uring, {how}, msgs/s >= 1.00x the best peer in every cell: " + verdict(
                met == len(ub), f"{met}/{len(ub)} cells; worst {fmt_worst(worst[2])}x at {worst[0]} x "
                                f"{fmt_size(worst[1])} against {worst[3]}") +
                         ("" if suffix else raw_best_note(summary)))
        ca = summary.get("cpu_asio" + suffix, [])
        if ca:
            worst = max(ca, key=lambda t: t[2])
            met = sum(1 for t in ca if t[2] <= 0.90)
            lines.append(f"evio on io_uring, {how}, CPU time per message <= 0.90x Asio's (the lower "
                         "of Asio's two builds) at 16 connections and above: " + verdict(
                             met == len(ca), f"{met}/{len(ca)} cells; worst {fmt_worst(worst[2])}x at "
                                             f"{worst[0]} x {fmt_size(worst[1])} against {worst[3]}") +
                         ("" if suffix else raw_cpu_note(summary, ca)))
    er = summary.get("epoll_raw", [])
    if er:
        worst = min(er, key=lambda t: t[2])
        met = sum(1 for t in er if t[2] >= 0.97)
        lines.append("evio on epoll >= 0.97x the raw epoll server in every cell: " + verdict(
            met == len(er), f"{met}/{len(er)} cells; worst {fmt_worst(worst[2])}x at {worst[0]} x "
                            f"{fmt_size(worst[1])}"))
    for evio, asio, raw in (("evio-epoll", "asio-epoll", "raw-epoll"),
                            ("evio-io_uring", "asio-io_uring", "raw-uring")):
        if evio in cg and asio in cg and cg[asio] > 0:
            r = cg[evio] / cg[asio]
            lines.append(f"Instructions per message, {evio} <= 0.5x {asio}: " + verdict(
                r <= 0.5, f"{cg[evio]:,.0f} vs {cg[asio]:,.0f} = {r:.2f}x"))
        if evio in cg and raw in cg and cg[raw] > 0:
            r = cg[evio] / cg[raw]
            lines.append(f"Instructions per message, {evio} on the way to <= 2x {raw}: " + verdict(
                r <= 2.0, f"{cg[evio]:,.0f} vs {cg[raw]:,.0f} = {r:.1f}x"))
    if not lines:
        lines.append("No echo or callgrind results in this run.")
    out.extend(f"- {l}" for l in lines)
    out.append("\nThe targets of the other sections are stated in those sections below.\n")


def chart(cells, results, path):
    if not cells or not shutil.which("gnuplot"):
        return False
    data = os.path.join(results, "chart.dat")
    with open(data, "w", encoding="utf-8") as f:
        for (conns, size) in sorted(cells):
            per = cells[(conns, size)]
            vals = [med(per[s], "rate") if s in per else float("nan") for s in SERVERS]
            f.write(f'"{conns}x{fmt_size(size).replace(" ", "")}" ' +
                    " ".join("NaN" if v != v else f"{v:.0f}" for v in vals) + "\n")
    script = os.path.join(results, "chart.gp")
    cols = ", ".join(f"'{data}' using {i + 2}:xtic(1) title '{s}'" for i, s in enumerate(SERVERS))
    with open(script, "w", encoding="utf-8") as f:
        f.write(f"""set terminal pngcairo size 1400,600 font ',10' noenhanced
set output '{path}'
set title 'Echo: median msgs/s per server (connections x message size; higher is better)'
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.9 border -1
set boxwidth 0.9
set logscale y
set grid ytics
set ylabel 'messages per second (log scale)'
set key outside right top
set xtics rotate by -30
plot {cols}
""")
    r = subprocess.run(["gnuplot", script], capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stderr)
    return r.returncode == 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--chart", required=True)
    ap.add_argument("--quick", default="0")
    a = ap.parse_args()

    cells = load_echo(os.path.join(a.results, "echo.tsv"))
    out = ["# Benchmarks", "",
           "Generated by `scripts/bench.sh` (do not edit by hand; rerun the script). Programs and "
           "method: [benchmarks/README.md](../benchmarks/README.md).", ""]
    if a.quick == "1":
        out += ["> **Smoke run (`--quick`)**: one cell, short rounds; the figures are not "
                "meaningful.", ""]
    out += ["## Machine", "", "| | |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in machine(a.root, a.results)]
    out += [f"| Load average | before {read(os.path.join(a.results, 'load_before'))}; after "
            f"{read(os.path.join(a.results, 'load_after'))} |",
            f"| Run time | {read(os.path.join(a.results, 'seconds'), '?')} s for scripts/bench.sh, of "
            f"which {read(os.path.join(a.results, 'build_seconds'), '?')} s configure + build |", ""]
    rounds = max((r["round"] for per in cells.values() for rows in per.values() for r in rows), default=0)
    out += ["## Method", "",
            "Seven echo servers run at once, each pinned to CPU 0 (`taskset -c 0`): evio on io_uring "
            "and on epoll (`benchmarks/echo/evio_echo_server`, written the way a user would, "
            "default options), evio on io_uring with one option set, `reactor_options::busy_poll` "
            "= 200 us (`--busy-poll 200`: a turn polls up to that long before it blocks, adaptive: "
            "only while the reactor's waits end within 200 us; row evio-io_uring-poll), "
            "Asio 1.22 C++20 coroutines built for epoll and for io_uring "
            "(`ASIO_HAS_IO_URING` + `ASIO_DISABLE_EPOLL`), and raw single-threaded epoll and "
            "liburing servers (multishot accept, multishot recv into provided buffers). Every "
            "server reads at most 16 KiB at a time and sets TCP_NODELAY. One closed-loop load "
            "generator (`benchmarks/echo/loadgen`, plain epoll, one thread, CPU 1, independent of "
            "evio) opens N connections to every server; each connection sends S bytes, waits for "
            "the whole echo, checks every byte against a per-connection, per-sequence pattern and "
            "sends the next message. Per cell it warms every server up (1 s), then runs "
            f"{rounds} rounds; in each round each server is driven alone (1 s), in turn, the order rotated by one each round (A B C, B C A, ...: no server always follows the same one), "
            "so drift of this shared VM hits all servers alike. Tables give medians over the "
            "rounds. Loopback TCP, so the kernel's share of the cost is large and identical for "
            "all servers; CPU per message includes the server's system time.", ""]
    summary = echo_section(cells, out) if cells else {}
    if cells:
        limits_section(cells, out)
    if not cells:
        out += ["## Echo", "", "Not run in this invocation (`scripts/bench.sh --only echo`, about 8 "
                "minutes; run it on a quiet machine).", ""]
    cg = callgrind_section(os.path.join(a.results, "callgrind.tsv"), out)
    syscalls_section(os.path.join(a.results, "syscalls.tsv"), out)
    targets_section(summary, cg, out)
    if cells and chart(cells, a.results, a.chart):
        out += ["![echo msgs/s per server and cell](benchmarks.png)", ""]
    findings = read(os.path.join(a.root, "benchmarks", "echo", "findings.md"))
    if findings:  # hand-written analysis that survives regeneration
        out += [findings, ""]
    for section in ("http", "micro", "idle", "memory"):
        frag = read(os.path.join(a.results, "sections", f"{section}.md"))
        if frag:
            out += [frag, ""]
    with open(a.out, "w", encoding="utf-8") as f:
        f.write("\n".join(out).rstrip() + "\n")
    print(f"wrote {a.out}" + (f" and {a.chart}" if cells else ""))


if __name__ == "__main__":
    main()
