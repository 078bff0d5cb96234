import threading

from topozarr_engine.resources import (
    DEFAULT_MAX_REGION_BYTES,
    available_memory,
    cpu_count,
    default_max_workers,
)
from topozarr_engine.timer import RegionTimer


def test_defaults():
    assert DEFAULT_MAX_REGION_BYTES == 256 * 1024**2
    assert cpu_count() >= 1
    mem = available_memory()
    assert mem is None or mem > 0
    assert 1 <= default_max_workers() <= cpu_count()
    # A huge region caps the workers at 1.
    assert default_max_workers(10**15) == 1


def test_timer_threadsafe():
    t = RegionTimer()

    def work():
        for _ in range(1000):
            t.add("read", 0.001)
            t.count(regions=1, shape=(2, 2))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    d = t.as_dict()
    assert d["regions"] == 4000
    assert abs(d["read_s"] - 4.0) < 1e-6
    assert d["region_shapes"] == [(2, 2)]
    with t.time("write"):
        pass
    assert t.write_s >= 0


def test_count_refuses_an_unknown_counter() -> None:
    import pytest
    from topozarr_engine import RegionTimer

    timer = RegionTimer()
    with pytest.raises(TypeError, match="unknown counters"):
        timer.count(region=1)  # a typo of "regions" must not pass silently
    timer.count(regions=2, bytes_read=10)
    assert (timer.regions, timer.bytes_read, timer.writes) == (2, 10, 0)
