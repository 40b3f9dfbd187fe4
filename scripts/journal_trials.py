"""Kill -9 trials for the audit journal (issue 4): no acknowledged entry may be lost.

Each trial starts a child that appends entries to one journal folder as fast as it can and
prints each sequence number after `append` returned (so every printed number was
acknowledged). The parent SIGKILLs it after a random delay. At the end every segment file is
read independently of the engine (a line is `<CRC-32 of the JSON, 8 hex digits> <JSON>`) and
every acknowledged number must be there. Exits 1 if any is missing.

    python scripts/journal_trials.py [--trials 100] [--seed S] [--fsync never|batched|always]
"""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import zlib

CHILD = r"""
import sys
from senti_os.core.faza30 import AuditJournal
journal = AuditJournal(sys.argv[1], fsync=sys.argv[2], max_segment_bytes=1048576, max_segments=10000)
n = 0
while True:
    seq = journal.append("repair", {"target": f"agent_failure:a{n % 7}", "action": "agent",
                                    "succeeded": n % 3 != 0, "pad": "x" * (n % 300)})
    print(seq, flush=True)
    n += 1
"""


def whole_entries(folder):
    """Sequence numbers of the whole lines in every segment, and the count of broken lines."""
    seqs, broken = [], 0
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), "rb") as fh:
            for line in fh.read().split(b"\n"):
                if not line:
                    continue
                crc, _, body = line.partition(b" ")
                if body and len(crc) == 8 and int(crc, 16) == zlib.crc32(body):
                    seqs.append(json.loads(body)["seq"])
                else:
                    broken += 1
    return seqs, broken


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--fsync", default="never", choices=["never", "batched", "always"])
    ap.add_argument("--folder", default=None)
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    rng = random.Random(seed)
    folder = args.folder or tempfile.mkdtemp(prefix="faza30-journal-trials-")
    acknowledged = set()
    started = time.monotonic()
    for _ in range(args.trials):
        child = subprocess.Popen([sys.executable, "-c", CHILD, folder, args.fsync],
                                 stdout=subprocess.PIPE, text=True)
        time.sleep(rng.uniform(0.05, 0.4))
        child.send_signal(signal.SIGKILL)
        out, _ = child.communicate(timeout=60)
        acknowledged.update(int(x) for x in out.split())
    seqs, broken = whole_entries(folder)
    present = set(seqs)
    lost = sorted(acknowledged - present)
    from senti_os.core.faza30 import AuditJournal
    stats = AuditJournal(folder, max_segments=10000).get_statistics()
    print(f"seed                       {seed}")
    print(f"trials (kill -9)           {args.trials}  (fsync={args.fsync})")
    print(f"entries acknowledged       {len(acknowledged)}")
    print(f"whole entries on disk      {len(present)}  (duplicates: {len(seqs) - len(present)})")
    print(f"torn lines (skipped)       {broken}  (journal reports {stats['skipped_lines']})")
    print(f"acknowledged entries lost  {len(lost)}")
    print(f"duration                   {time.monotonic() - started:.1f} s")
    return 1 if lost or not acknowledged or len(seqs) != len(present) else 0


if __name__ == "__main__":
    sys.exit(main())
