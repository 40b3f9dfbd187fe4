"""Throughput of AnomalyDetector.detect_series (values per second), per method.

Run with a release build:  maturin develop --release -q && python scripts/bench_batch_anomaly.py
Not a test: it only prints figures. Data: 10M float64 values (Gaussian noise with a few
outliers), passed as an array.array('d') (read in place) and, for comparison, as a list.
"""

import argparse
import array
import random
import time

from senti_os.core.faza30.detection_engine import AnomalyDetector


def best_of(repeats, fn):
    best = float("inf")
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--windows", default="20,1000")
    args = parser.parse_args()

    rng = random.Random(1)
    values = array.array("d", (rng.gauss(100.0, 5.0) for _ in range(args.n)))
    for i in range(0, args.n, 997):
        values[i] += 60.0
    as_list = values.tolist()

    print(f"{args.n:,} values, best of {args.repeats}")
    print(f"{'method':8} {'window':>6} {'input':>6} {'seconds':>8} {'M values/s':>11} {'anomalies':>10}")
    for window in (int(w) for w in args.windows.split(",")):
        for method in ("zscore", "ewma", "mad"):
            detector = AnomalyDetector(window, 3.0, method=method)
            inputs = [("array", values)]
            if window == 20:
                inputs.append(("list", as_list))
            for label, data in inputs:
                seconds, result = best_of(args.repeats, lambda: detector.detect_series(data))
                print(
                    f"{method:8} {window:>6} {label:>6} {seconds:8.3f} "
                    f"{args.n / seconds / 1e6:11.1f} {result.anomalies:>10,}"
                )


if __name__ == "__main__":
    main()
