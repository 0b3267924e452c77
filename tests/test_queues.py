import threading

import pytest

from glasses.pipelines.queues import END, Policy, Stopped, StreamQueue


def test_newest_policy_drops_oldest_and_counts():
    q = StreamQueue(2, Policy.NEWEST, threading.Event())
    for i in range(5):
        assert q.put(i, wait=False) >= 0
    assert q.dropped == 3
    assert [q.get(), q.get()] == [3, 4]


def test_keep_all_without_waiting_refuses_and_never_drops():
    q = StreamQueue(2, Policy.KEEP_ALL, threading.Event())
    assert q.put("a", wait=False) >= 0
    assert q.put("b", wait=False) >= 0
    assert q.put("c", wait=False) == -1
    assert q.dropped == 0
    assert [q.get(), q.get()] == ["a", "b"]


def test_end_marker_is_always_accepted_and_never_dropped():
    q = StreamQueue(1, Policy.NEWEST, threading.Event())
    q.put(1)
    q.put(END)
    q.put(2, wait=False)  # drops 1, not END
    assert q.get() is END
    assert q.get() == 2


def test_blocked_threads_wake_on_stop():
    stop = threading.Event()
    q = StreamQueue(1, Policy.KEEP_ALL, stop)
    q.put(1)
    errors = []

    def blocked_put():
        try:
            q.put(2)
        except Stopped:
            errors.append("stopped")

    t = threading.Thread(target=blocked_put)
    t.start()
    stop.set()
    t.join(1.0)
    assert not t.is_alive() and errors == ["stopped"]
    with pytest.raises(Stopped):  # a stop abandons what is still queued
        q.get()
