"""AnomalyDetector batch API: detect_series, detect_batch, observe_many."""

import array
import math
import random
import struct

import pytest

from senti_os.core.faza30.detection_engine import AnomalyDetector, SeriesAnomalies

METHODS = ["zscore", "mad", "ewma"]


def noisy(n, seed, offset=0.0, scale=1.0):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.02:
            out.append(offset + scale * rng.choice([-9.0, 9.0]))
        elif r < 0.05 and out:
            out.append(out[-1])
        else:
            out.append(offset + scale * rng.gauss(0.0, 1.0))
    return out


def one_by_one(values, window, threshold, method):
    detector = AnomalyDetector(window, threshold, method=method)
    return [i for i, v in enumerate(values) if detector.detect_anomaly("m", v)]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("window,threshold", [(2, 0.5), (5, 1.0), (20, 3.0), (101, 2.5)])
@pytest.mark.parametrize("offset,scale", [(0.0, 1.0), (1e6, 1.0), (-3e9, 1e-3)])
def test_series_gives_the_answers_of_one_value_at_a_time(method, window, threshold, offset, scale):
    values = noisy(3000, seed=window, offset=offset, scale=scale)
    expected = one_by_one(values, window, threshold, method)
    result = AnomalyDetector(window, threshold, method=method).detect_series(array.array("d", values))
    assert result.indices == expected
    assert result.count == len(values)
    assert result.anomalies == len(expected)
    flags = result.flags
    assert len(flags) == len(values)
    assert [i for i, f in enumerate(flags) if f] == expected
    assert set(flags) <= {0, 1}


def test_flat_runs_and_steps_match():
    values = [0.1] * 40 + [0.2, 0.1, -0.0, 0.0, 5.0] + [3.3] * 25 + [7.0, 3.3]
    for method in METHODS:
        for threshold in (0.5, 1.5, 3.0):
            expected = one_by_one(values, 10, threshold, method)
            got = AnomalyDetector(10, threshold, method=method).detect_series(values)
            assert got.indices == expected, (method, threshold)


def test_series_stores_nothing_and_uses_overrides():
    detector = AnomalyDetector(20, 3.0)
    values = noisy(500, seed=3)
    result = detector.detect_series(values, method="mad", window_size=7, threshold=2.0)
    assert len(detector) == 0
    assert (result.method, result.window_size, result.threshold) == ("mad", 7, 2.0)
    assert result.indices == one_by_one(values, 7, 2.0, "mad")
    assert detector.method == "zscore" and detector.window_size == 20


def test_buffers_and_lists_agree():
    values = noisy(2000, seed=9)
    packed = array.array("d", values)
    expected = AnomalyDetector().detect_series(values).indices
    assert expected
    raw = packed.tobytes()
    for data in (
        packed,
        tuple(values),
        memoryview(packed),
        raw,
        bytearray(raw),
        memoryview(raw),
        memoryview(raw).cast("d"),
    ):
        assert AnomalyDetector().detect_series(data).indices == expected, type(data)
    # Strided and misaligned views are read too (copied).
    strided = memoryview(array.array("d", [v for v in values for _ in (0, 1)]))[::2]
    assert AnomalyDetector().detect_series(strided).indices == expected
    misaligned = memoryview(b"\0" + raw)[1:]
    assert AnomalyDetector().detect_series(misaligned).indices == expected
    # Ints and floats mix in lists.
    assert AnomalyDetector(4, 2.0).detect_series([1, 2, 1, 2, 1, 50]).indices == [5]


def test_numpy_arrays_are_read_in_place():
    np = pytest.importorskip("numpy")
    values = noisy(1000, seed=4)
    expected = AnomalyDetector().detect_series(values).indices
    assert AnomalyDetector().detect_series(np.asarray(values, dtype=np.float64)).indices == expected
    with pytest.raises(TypeError, match="float64"):
        AnomalyDetector().detect_series(np.zeros(4, dtype=np.float32))


@pytest.mark.parametrize(
    "bad,error,match",
    [
        ("1.0,2.0", TypeError, "got str"),
        (5, TypeError, "got int"),
        (None, TypeError, "got NoneType"),
        ({1.0, 2.0}, TypeError, "got set"),
        ([1.0, "2"], TypeError, r"values\[1\] must be a real number, got str"),
        ([1.0, None], TypeError, r"values\[1\] must be a real number"),
        (array.array("f", [1.0]), TypeError, "format 'd'"),
        (array.array("q", [1]), TypeError, "format 'd'"),
        (b"1234567", ValueError, "7 bytes"),
        (memoryview(array.array("d", [1.0] * 4)).cast("B").cast("d", (2, 2)), ValueError, "one-dimensional"),
        ([1.0, float("nan")], ValueError, r"values\[1\] is nan"),
        (array.array("d", [1.0, 2.0, float("inf")]), ValueError, r"values\[2\] is inf"),
        ([1.0, 2.0, 3.0, -math.inf], ValueError, r"values\[3\] is -inf"),
        ([2**2000], ValueError, "too large"),
    ],
)
def test_bad_series_are_refused(bad, error, match):
    detector = AnomalyDetector()
    with pytest.raises(error, match=match):
        detector.detect_series(bad)
    assert detector.detect_series([1.0, 2.0]).count == 2


@pytest.mark.parametrize(
    "kwargs,error",
    [
        ({"method": "median"}, ValueError),
        ({"method": 3}, TypeError),
        ({"window_size": 1}, ValueError),
        ({"window_size": 10001}, ValueError),
        ({"window_size": 2.5}, TypeError),
        ({"threshold": 0}, ValueError),
        ({"threshold": float("nan")}, ValueError),
        ({"threshold": "3"}, TypeError),
    ],
)
def test_bad_settings_are_refused(kwargs, error):
    with pytest.raises(error):
        AnomalyDetector().detect_series([1.0, 2.0], **kwargs)


def test_empty_and_short_series():
    for method in METHODS:
        detector = AnomalyDetector(100, 0.1, method=method)
        empty = detector.detect_series(array.array("d"))
        assert (empty.count, empty.anomalies, empty.indices, empty.flags) == (0, 0, [], b"")
        # Shorter than half the window: every value is warm-up.
        short = detector.detect_series([1.0, 1e9, -1e9, 5.0])
        assert (short.count, short.anomalies) == (4, 0)


def test_result_object():
    result = AnomalyDetector(4, 2.0).detect_series([1.0, 2.0, 1.0, 2.0, 9.0])
    assert isinstance(result, SeriesAnomalies)
    assert result.indices == [4]
    assert result.flags == b"\x00\x00\x00\x00\x01"
    assert repr(result) == (
        'SeriesAnomalies(count=5, anomalies=1, method="zscore", window_size=4, threshold=2.0)'
    )
    with pytest.raises(AttributeError):
        result.count = 3


def test_detect_batch_continues_each_metric():
    a, b = noisy(800, seed=1), noisy(800, seed=2, offset=50.0)
    step = AnomalyDetector(10, 2.0)
    expected_a = [i for i, v in enumerate(a) if step.detect_anomaly("a", v)]
    expected_b = [i for i, v in enumerate(b) if step.detect_anomaly("b", v)]
    batch = AnomalyDetector(10, 2.0)
    first = batch.detect_batch(["a", "b"], [a[:300], array.array("d", b[:300])])
    second = batch.detect_batch(("b", "a"), (b[300:], memoryview(array.array("d", a[300:]))))
    assert first[0].indices + [300 + i for i in second[1].indices] == expected_a
    assert first[1].indices + [300 + i for i in second[0].indices] == expected_b
    assert {k: list(v) for k, v in batch.history.items()} == {
        k: list(v) for k, v in step.history.items()
    }
    # The stored windows carry on into detect_anomaly.
    assert batch.detect_anomaly("a", 1e6) == step.detect_anomaly("a", 1e6)


def test_detect_batch_refuses_bad_input_before_recording():
    detector = AnomalyDetector()
    with pytest.raises(ValueError, match=r"series\[1\]\[2\] is nan"):
        detector.detect_batch(["a", "b"], [[1.0, 2.0], [1.0, 2.0, float("nan")]])
    with pytest.raises(TypeError, match=r"names\[1\] must be a str"):
        detector.detect_batch(["a", 3], [[1.0], [1.0]])
    with pytest.raises(ValueError, match="same length"):
        detector.detect_batch(["a"], [[1.0], [2.0]])
    with pytest.raises(TypeError, match="names must be a list or tuple"):
        detector.detect_batch("ab", [[1.0], [2.0]])
    with pytest.raises(TypeError, match=r"series\[0\] must be"):
        detector.detect_batch(["a"], [3.0])
    with pytest.raises(ValueError, match="1024"):
        detector.detect_batch(["x" * 2000], [[1.0]])
    assert len(detector) == 0
    # An empty series creates no metric.
    assert detector.detect_batch(["a"], [[]])[0].count == 0
    assert len(detector) == 0


def test_observe_many_is_detect_anomaly_in_order():
    step = AnomalyDetector(4, 1.0)
    batch = AnomalyDetector(4, 1.0)
    rounds = [{"x": float(i % 3), "y": float((i * 7) % 5)} for i in range(30)]
    rounds.append({"x": 40.0, "y": 2.0})
    for values in rounds:
        expected = [k for k, v in values.items() if step.detect_anomaly(k, v)]
        assert batch.observe_many(values) == expected
    assert batch.observe_many([("x", 1.0), ["y", 100.0], ("x", 500)]) == ["y", "x"]
    assert batch.observe_many(iter([("z", 1.0)])) == []
    assert batch.observe_many({}) == []


def test_observe_many_refuses_bad_input_before_recording():
    detector = AnomalyDetector()
    for bad, error in [
        ({"a": 1.0, "b": float("nan")}, ValueError),
        ({"a": 1.0, 2: 1.0}, TypeError),
        ({"a": "1"}, TypeError),
        ([("a", 1.0), ("b",)], TypeError),
        ([("a", 1.0), "ab"], TypeError),
        ("ab", TypeError),
        (3, TypeError),
        ({"a" * 2000: 1.0}, ValueError),
    ]:
        with pytest.raises(error):
            detector.observe_many(bad)
    assert len(detector) == 0


def test_buffer_is_released_after_the_call():
    data = bytearray(struct.pack("4d", 1.0, 2.0, 3.0, 4.0))
    AnomalyDetector().detect_series(data)
    data.extend(b"\0" * 8)  # a held export would make this raise BufferError
    assert len(data) == 40
