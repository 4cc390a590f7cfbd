"""InfiniteSampler: seeded, endless, each pass a permutation, exact resume, disjoint rank shards."""

import itertools

import pytest

from ganforge.data import InfiniteSampler
from ganforge.errors import UsageError


def take(sampler, k):
    return list(itertools.islice(iter(sampler), k))


def test_each_pass_is_a_permutation_and_passes_differ():
    n = 37
    s = InfiniteSampler(n, seed=5)
    seq = take(s, 6 * n)
    passes = [seq[k * n:(k + 1) * n] for k in range(6)]
    for p in passes:
        assert sorted(p) == list(range(n))
    assert len({tuple(p) for p in passes}) == 6          # the window keeps reshuffling
    assert seq == take(InfiniteSampler(n, seed=5), 6 * n)  # seeded
    assert seq != take(InfiniteSampler(n, seed=6), 6 * n)
    assert take(InfiniteSampler(5, shuffle=False), 12) == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]
    w0 = take(InfiniteSampler(n, seed=5, window_size=0), 2 * n)
    assert w0[:n] == w0[n:] and sorted(w0[:n]) == list(range(n))


@pytest.mark.parametrize("stop", [0, 1, 36, 37, 200, 5000])
def test_exact_resume(stop):
    n = 37
    reference = take(InfiniteSampler(n, seed=3), stop + 100)
    s = InfiniteSampler(n, seed=3)
    it = iter(s)
    first = [next(it) for _ in range(stop)]
    state = s.state_dict()
    assert state["position"] == stop
    resumed = InfiniteSampler(n, seed=3)
    resumed.load_state_dict(state)
    assert first + take(resumed, 100) == reference


def test_resume_after_prefetch_uses_consumed_count():
    # A DataLoader may pull indices ahead of the training loop: save what was consumed.
    s = InfiniteSampler(50, rank=1, num_replicas=2, seed=0)
    it = iter(s)
    pulled = [next(it) for _ in range(30)]
    consumed = 17
    r = InfiniteSampler(50, rank=1, num_replicas=2, seed=0)
    r.load_state_dict(s.state_dict(num_consumed=consumed))
    assert take(r, 13) == pulled[consumed:]


def test_two_ranks_are_disjoint_and_cover_each_pass():
    n = 40
    r0 = take(InfiniteSampler(n, rank=0, num_replicas=2, seed=9), 3 * n // 2)
    r1 = take(InfiniteSampler(n, rank=1, num_replicas=2, seed=9), 3 * n // 2)
    glob = take(InfiniteSampler(n, seed=9), 3 * n)
    assert r0 == glob[0::2] and r1 == glob[1::2]
    for k in range(3):
        a, b = set(r0[k * n // 2:(k + 1) * n // 2]), set(r1[k * n // 2:(k + 1) * n // 2])
        assert not (a & b) and (a | b) == set(range(n))
    # a run saved on 2 ranks resumes on 1 rank with the same global stream
    s = InfiniteSampler(n, rank=0, num_replicas=2, seed=9)
    take(s, 7)
    single = InfiniteSampler(n, seed=9)
    single.load_state_dict(s.state_dict(num_consumed=7))
    assert take(single, 10) == glob[14:24]


def test_bad_states_and_arguments():
    s = InfiniteSampler(10, seed=1)
    with pytest.raises(UsageError, match="dataset_len"):
        InfiniteSampler(11, seed=1).load_state_dict(s.state_dict())
    with pytest.raises(UsageError, match="seed"):
        InfiniteSampler(10, seed=2).load_state_dict(s.state_dict())
    with pytest.raises(UsageError, match="empty"):
        InfiniteSampler(0)
    with pytest.raises(ValueError):
        InfiniteSampler(10, rank=2, num_replicas=2)
