"""CPU time by process, for scripts/bench-local.sh: where a benchmark's CPU went.

    python scripts/cpu_by_process.py snapshot FILE          # every process's CPU time so far
    python scripts/cpu_by_process.py report BEFORE AFTER N  # CPU used between two snapshots,
                                                            # by component, in s and ms per unit (N)

Components group processes by name: the emulators (DynamoDB Local's JVM, moto), the Lambda runtime
emulator (cargo-lambda), the bridge, the load client, and each function binary. Reads /proc only
(Linux); a process that started after BEFORE counts from zero.
"""

import json
import os
import sys

TICKS = os.sysconf("SC_CLK_TCK")


def snapshot():
    processes = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().split(b"\0")
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        # utime and stime are fields 14 and 15 of stat; fields[] starts at field 3.
        seconds = (int(fields[11]) + int(fields[12])) / TICKS
        exe = os.path.basename(cmdline[0].decode(errors="replace")) if cmdline and cmdline[0] else ""
        processes[pid] = {"name": component(comm, exe, cmdline), "cpu": seconds}
    return processes


def component(comm, exe, cmdline):
    args = b" ".join(cmdline).decode(errors="replace")
    if exe == "java" or comm == "java":
        return "DynamoDB Local (java)" if "DynamoDb" in args or "DynamoDB" in args else "java"
    if "moto_server" in args:
        return "moto server"
    if "localstack" in args:
        return "LocalStack"
    if exe == "cargo-lambda" or comm == "cargo-lambda":
        return "cargo lambda watch"
    if exe == "orderflow-bridge":
        return "bridge"
    if exe == "orderflow":
        return "load client (orderflow load)"
    if not exe:
        return "kernel threads (I/O, memory)"
    return f"function {exe}"


def report(before_file, after_file, units):
    with open(before_file) as f:
        before = json.load(f)
    with open(after_file) as f:
        after = json.load(f)
    used = {}
    for pid, process in after.items():
        start = before.get(pid, {"cpu": 0.0, "name": process["name"]})
        if start["name"] != process["name"]:
            start = {"cpu": 0.0}
        delta = process["cpu"] - start["cpu"]
        if delta > 0:
            used[process["name"]] = used.get(process["name"], 0.0) + delta
    total = sum(used.values())
    print(f"CPU time during the load, by component ({units} orders):")
    for name, seconds in sorted(used.items(), key=lambda kv: -kv[1]):
        if seconds < 0.05:
            continue
        print(f"  {name:<40} {seconds:7.1f} s  {1000 * seconds / units:7.1f} ms/order  {100 * seconds / total:5.1f} %")
    print(f"  {'all':<40} {total:7.1f} s  {1000 * total / units:7.1f} ms/order")


if __name__ == "__main__":
    if sys.argv[1] == "snapshot":
        with open(sys.argv[2], "w") as f:
            json.dump(snapshot(), f)
    elif sys.argv[1] == "report":
        report(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit(__doc__)
