"""CPU time (user + system, from /proc/PID/stat) of a cluster's processes and of a command, in
microseconds, for the measuring scripts (steadier than throughput on a shared machine).

    python3 scripts/lib/cpu.py nodes CLUSTER_DIR      the cluster's nodes (not its gateway)
    python3 scripts/lib/cpu.py cluster CLUSTER_DIR    its nodes and its gateway
    python3 scripts/lib/cpu.py gateway CLUSTER_DIR    its gateway only

    python3 scripts/lib/cpu.py run --cluster DIR --from REGEX [--to REGEX] \
        --stdout FILE --stderr FILE -- COMMAND...

`run` starts COMMAND, copies its stdout and stderr into the files, and samples the CPU time of
COMMAND's process and of the cluster in DIR (nodes and gateway; DIR may appear only once
COMMAND made it) when the first line matching --from appears on either stream, and again when
one matching --to appears (or, without --to, when COMMAND exits: its own CPU then from its
rusage). It prints `COMMAND_US CLUSTER_US`, the CPU time each spent between the two moments,
and exits with COMMAND's status.
"""
import argparse
import glob
import os
import re
import subprocess
import sys
import threading

TICK = os.sysconf("SC_CLK_TCK")


def pid_cpu_us(pid: int) -> int:
    """User + system CPU time of a live process, in microseconds (0 when it is gone)."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return (int(fields[11]) + int(fields[12])) * 1_000_000 // TICK


def cluster_cpu_us(cluster_dir: str, gateway: bool, nodes: bool = True) -> int:
    """The CPU time of a cluster's running processes (from its pids/*.pid files): its nodes
    unless `nodes` is false, its gateway when `gateway` is true."""
    total = 0
    for f in glob.glob(os.path.join(cluster_dir, "pids", "*.pid")):
        is_gateway = f.endswith("gateway.pid")
        if (is_gateway and not gateway) or (not is_gateway and not nodes):
            continue
        try:
            pid = int(open(f).read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        total += pid_cpu_us(pid)
    return total


def run(args: argparse.Namespace) -> int:
    start_re = re.compile(args.start)
    end_re = re.compile(args.end) if args.end else None
    proc = subprocess.Popen(
        args.command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
    )
    samples: dict[str, tuple[int, int]] = {}
    lock = threading.Lock()

    def sample(which: str) -> None:
        with lock:
            if which not in samples:
                samples[which] = (pid_cpu_us(proc.pid), cluster_cpu_us(args.cluster, True))

    def pump(stream, path: str) -> None:
        with open(path, "w") as out:
            for line in stream:
                out.write(line)
                if start_re.search(line):
                    sample("from")
                elif end_re is not None and "from" in samples and end_re.search(line):
                    sample("to")

    threads = [
        threading.Thread(target=pump, args=(proc.stdout, args.stdout_file)),
        threading.Thread(target=pump, args=(proc.stderr, args.stderr_file)),
    ]
    for t in threads:
        t.start()
    if end_re is None:
        _, status, usage = os.wait4(proc.pid, 0)
        own = int((usage.ru_utime + usage.ru_stime) * 1_000_000)
        samples.setdefault("to", (own, cluster_cpu_us(args.cluster, True)))
        proc.returncode = os.waitstatus_to_exitcode(status)
    else:
        proc.wait()
    for t in threads:
        t.join()
    if "from" not in samples or "to" not in samples:
        print(f"cpu.py: the command never printed {args.start!r} and then {args.end!r}", file=sys.stderr)
        return proc.returncode or 1
    (a0, c0), (a1, c1) = samples["from"], samples["to"]
    print(a1 - a0, c1 - c0)
    return proc.returncode


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] in ("nodes", "cluster", "gateway"):
        mode = sys.argv[1]
        print(cluster_cpu_us(sys.argv[2], mode != "nodes", mode != "gateway"))
        return 0
    p = argparse.ArgumentParser(usage=__doc__)
    p.add_argument("mode", choices=["run"])
    p.add_argument("--cluster", required=True)
    p.add_argument("--from", dest="start", required=True)
    p.add_argument("--to", dest="end")
    p.add_argument("--stdout", dest="stdout_file", required=True)
    p.add_argument("--stderr", dest="stderr_file", required=True)
    p.add_argument("command", nargs="+")
    return run(p.parse_args())


if __name__ == "__main__":
    sys.exit(main())
