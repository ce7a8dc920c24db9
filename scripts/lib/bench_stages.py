#!/usr/bin/env python3
"""Where the bridge's time went in each bridge phase of scripts/bench.

Reads PHASES/LABEL.metrics-before and .metrics-after (the bridge's /metrics
around the phase) and PHASES/LABEL.json (what the load client measured), and
prints, per phase, each stage's count, mean and p99 from the deltas of
enate_bridge_request_stage_seconds, beside the bridge's whole request and the
client's. The deltas include the phase's warmup. Means are exact (sum/count);
p99s are interpolated within buckets, as PromQL's histogram_quantile does.

Usage: bench_stages.py PHASES OUT.json CONNECTIONS
"""
import json
import math
import pathlib
import re
import sys

STAGES = ["body_read", "admission", "normalize", "lane_wait", "send", "confirm", "reply",
          "spool_write"]
SERIES = re.compile(
    r"^(enate_bridge_request_(?:stage|duration)_seconds)_(bucket|sum|count)\{([^}]*)\} (\S+)$")
TARGET_MS = 1.5


def read(path):
    """{(family, stage or webhook): {"sum", "count", "buckets": {le: cumulative}}}."""
    found = {}
    for line in path.read_text().splitlines():
        match = SERIES.match(line)
        if not match:
            continue
        family, part, labels, value = match.groups()
        labels = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        key = (family, labels.get("stage") or labels.get("webhook"))
        entry = found.setdefault(key, {"sum": 0.0, "count": 0.0, "buckets": {}})
        if part == "bucket":
            entry["buckets"][float(labels["le"])] = float(value)
        else:
            entry[part] = float(value)
    return found


def quantile(q, buckets, count):
    """Linear within the bucket that holds the rank, as histogram_quantile."""
    if count <= 0:
        return math.nan
    rank, lower, below = q * count, 0.0, 0.0
    for le in sorted(buckets):
        if buckets[le] >= rank:
            if math.isinf(le):
                return lower
            return lower + (le - lower) * (rank - below) / max(buckets[le] - below, 1e-12)
        lower, below = le, buckets[le]
    return lower


def delta(before, after, key):
    now = after.get(key)
    if now is None:
        return None
    then = before.get(key, {"sum": 0.0, "count": 0.0, "buckets": {}})
    count = now["count"] - then["count"]
    buckets = {le: n - then["buckets"].get(le, 0.0) for le, n in now["buckets"].items()}
    return {
        "count": int(count),
        "mean_ms": 1000 * (now["sum"] - then["sum"]) / count if count else math.nan,
        "p99_ms": 1000 * quantile(0.99, buckets, count),
    }


def phase(phases, label):
    before = read(phases / f"{label}.metrics-before")
    after = read(phases / f"{label}.metrics-after")
    stages = {s: delta(before, after, ("enate_bridge_request_stage_seconds", s)) for s in STAGES}
    stages = {s: d for s, d in stages.items() if d and d["count"]}
    whole = delta(before, after, ("enate_bridge_request_duration_seconds", "PacketUpdated"))
    latency = json.loads((phases / f"{label}.json").read_text())["latency"]
    client = {"mean_ms": latency["mean_ms"], "p99_ms": latency["p99_ms"]}
    confirm = stages.get("confirm", {}).get("mean_ms", math.nan)
    timed = sum(d["mean_ms"] for d in stages.values())
    return {
        "stages": stages,
        "bridge_whole": whole,
        "client": client,
        # What the target is about: the request as Enate sees it, less
        # the broker's confirm.
        "outside_confirm_ms": client["mean_ms"] - confirm,
        # Inside the handler but in no stage (one message per request here).
        "untimed_in_bridge_ms": whole["mean_ms"] - timed if whole else math.nan,
    }


def main():
    phases, out, connections = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
    labels = sorted(p.name[: -len(".metrics-before")] for p in phases.glob("*.metrics-before"))
    report = {
        label: phase(phases, label)
        for label in labels
        if (phases / f"{label}.metrics-after").exists() and (phases / f"{label}.json").exists()
    }
    print()
    print("where the time goes: the bridge's stage histograms over each bridge phase "
          "(warmup included; means exact, p99 interpolated within buckets)")
    row = "  %-26s %9s %9s %9s"
    for label, r in report.items():
        print()
        print("%-28s %9s %9s %9s" % (label, "count", "mean ms", "p99 ms"))
        for stage, d in r["stages"].items():
            print(row % (stage, d["count"], "%.3f" % d["mean_ms"], "%.3f" % d["p99_ms"]))
        whole, client = r["bridge_whole"], r["client"]
        if whole and whole["count"]:
            print(row % ("whole request (bridge)", whole["count"], "%.3f" % whole["mean_ms"],
                         "%.3f" % whole["p99_ms"]))
        print(row % ("request (load client)", "", "%.3f" % client["mean_ms"],
                     "%.3f" % client["p99_ms"]))
        print(row % ("client mean - confirm", "", "%.3f" % r["outside_confirm_ms"], ""))
        print(row % ("bridge whole - stages", "", "%.3f" % r["untimed_in_bridge_ms"], ""))
    closed = report.get("bridge-closed")
    if closed:
        value = closed["outside_confirm_ms"]
        print()
        print("%-58s %-34s %s" % (
            f"mean outside the confirm, closed loop, {connections} conns <= {TARGET_MS} ms",
            f"{value:.2f} ms", "PASS" if value <= TARGET_MS else "MISS"))
    out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
