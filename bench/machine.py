"""Measures the machine the benchmarks run on, so every figure is read against what the hardware
can do: the CPU, the disk's sequential write rate with fdatasync, file creations with fsync per
second, one-row SQLite commits with synchronous=FULL per second, and the SHA-256 rate.

    python3 bench/machine.py DIR            # prints the facts, measured in DIR (on the data disk)
    python3 bench/machine.py DIR --shell    # the same, plus `machine_<name>=<value>` lines last

Each figure takes about a second; DIR is left as it was found.
"""

import hashlib
import os
import sqlite3
import sys
import tempfile
import time

MIB = 1024 * 1024


def cpu():
    model, cores = "unknown", os.cpu_count() or 0
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return model, cores


def disk_write_mb_s(d, size_mib=256):
    """Sequential write of size_mib MiB in 1 MiB blocks, then fdatasync: what a blob commit pays."""
    block = os.urandom(MIB)
    path = os.path.join(d, "write.bin")
    started = time.monotonic()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for _ in range(size_mib):
            os.write(fd, block)
        os.fdatasync(fd)
    finally:
        os.close(fd)
    elapsed = time.monotonic() - started
    os.unlink(path)
    return size_mib * MIB / elapsed / 1e6


def fsync_creations_per_s(d, seconds=1.0):
    """Small files created, written and fsynced, with the directory fsynced: one per tiny blob."""
    n, started = 0, time.monotonic()
    dfd = os.open(d, os.O_RDONLY)
    try:
        while time.monotonic() - started < seconds:
            path = os.path.join(d, f"f{n}")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, b"x" * 512)
            os.fsync(fd)
            os.close(fd)
            os.fsync(dfd)
            n += 1
    finally:
        os.close(dfd)
    elapsed = time.monotonic() - started
    for i in range(n):
        os.unlink(os.path.join(d, f"f{i}"))
    return n / elapsed


def sqlite_commits_per_s(d, seconds=1.0):
    """One-row SQLite commits in WAL mode with synchronous=FULL, as the metadata store commits."""
    path = os.path.join(d, "commits.db")
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE t (n INTEGER)")
        n, started = 0, time.monotonic()
        while time.monotonic() - started < seconds:
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO t VALUES (?)", (n,))
            db.execute("COMMIT")
            n += 1
        elapsed = time.monotonic() - started
    finally:
        db.close()
    for suffix in ("", "-wal", "-shm"):
        try:
            os.unlink(path + suffix)
        except FileNotFoundError:
            pass
    return n / elapsed


def sha256_mb_s(size_mib=256):
    """One SHA-256 stream over size_mib MiB in memory (OpenSSL, with the CPU's SHA extensions)."""
    data = os.urandom(MIB) * size_mib
    best = 0.0
    for _ in range(2):
        started = time.monotonic()
        hashlib.sha256(data).digest()
        best = max(best, len(data) / (time.monotonic() - started) / 1e6)
    return best


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: machine.py DIR [--shell]; DIR is a directory on the disk the servers write to")
    parent, shell = sys.argv[1], "--shell" in sys.argv[2:]
    with tempfile.TemporaryDirectory(dir=parent, prefix="machine.") as d:
        model, cores = cpu()
        write = disk_write_mb_s(d)
        creations = fsync_creations_per_s(d)
        commits = sqlite_commits_per_s(d)
    sha = sha256_mb_s()
    print(f"machine: {model}, {cores} cores")
    print(f"machine: disk write {write:.0f} MB/s (1 MiB blocks, fdatasync), "
          f"{creations:.0f} file creations with fsync/s, {commits:.0f} SQLite synchronous=FULL commits/s")
    print(f"machine: SHA-256 {sha:.0f} MB/s (one stream)")
    if shell:
        print(f"machine_disk_mb_s={write:.1f}")
        print(f"machine_fsyncs_per_s={creations:.0f}")
        print(f"machine_commits_per_s={commits:.0f}")
        print(f"machine_sha256_mb_s={sha:.1f}")


if __name__ == "__main__":
    main()
