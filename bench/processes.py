"""CPU time and peak memory of a gunicorn server, read from /proc for its master and workers."""

import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def worker_pids(master_pid):
    """The master's child processes: its workers."""
    path = Path(f"/proc/{master_pid}/task/{master_pid}/children")
    return [int(pid) for pid in path.read_text().split()]


def cpu_seconds(master_pid):
    """User plus system CPU time so far of the master and its workers together.

    A server of one process (json-server) is its own master and has no workers.
    """
    return sum(_cpu_seconds(pid) for pid in [master_pid, *worker_pids(master_pid)])


def _cpu_seconds(pid):
    # The command name may hold spaces or parentheses, so count fields after its closing one.
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLOCK_TICKS


def peak_worker_rss_mb(master_pid):
    """The largest resident set size any worker has reached, in MiB (VmHWM); of a server of one
    process, its own."""
    return max(_peak_rss_kib(pid) for pid in worker_pids(master_pid) or [master_pid]) / 1024


def _peak_rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise LookupError(f"no VmHWM for process {pid}")
