"""xnn.random: the device-side counter-based bits behind dropout masks, and the seeded host draws."""

from __future__ import annotations

import numpy as np
import pytest

import xnn
import xnn.testing
from xnn import random
from xnn.backend import backend_of

LOW32 = 0xFFFFFFFF


def _mix32_reference(x: int) -> int:
    """lowbias32 on Python ints, written from the published uint32 definition."""
    x ^= x >> 16
    x = (x * 0x21F0AAAD) % 2**32
    x ^= x >> 15
    x = (x * 0x735A2D97) % 2**32
    return x ^ (x >> 15)


def _bits_reference(shape: tuple[int, ...], key: int) -> np.ndarray:
    """random_bits' documented formula, one Python int at a time."""
    k0, k1 = key & LOW32, key >> 32
    cols = shape[-1] if shape else 1
    rows = int(np.prod(shape[:-1], dtype=np.int64))
    hashed = [_mix32_reference(_mix32_reference(i ^ k0) ^ k1) for i in range(rows + cols)]
    row, col = hashed[:rows], hashed[rows:]
    scramble = [[(h ^ g) * 0x735A2D97 % 2**32 for g in col] for h in row]
    return np.array([[x ^ (x >> 16) for x in line] for line in scramble]).reshape(shape)


@pytest.mark.parametrize("shape", [(3, 5), (2, 3, 4), (7,), ()])
def test_random_bits_equal_the_uint32_hash_on_every_backend(backend, shape):
    key = 0x5DEECE66D_2545F491 & (2**63 - 1)
    got = xnn.to_numpy(random.random_bits(backend.xp, shape, key, backend.device))
    assert got.shape == shape and str(got.dtype) == "int64"
    np.testing.assert_array_equal(got, _bits_reference(shape, key))


def test_random_bits_stay_on_the_device_of_the_backend(backend):
    bits = random.random_bits(backend.xp, (4, 4), 1, backend.device)
    assert str(backend_of(bits).device) == str(backend.device)


def test_random_bits_look_independent_across_bits_rows_columns_and_keys():
    xp = xnn.get_backend().xp
    bits = xnn.to_numpy(random.random_bits(xp, (512, 512), 12345, "cpu"))
    for k in range(32):
        assert abs(((bits >> k) & 1).mean() - 0.5) < 0.005, k
    half = bits < 2**31
    # rows and columns are not xor-shifted copies of each other (their masks agree half the time)
    assert abs((half[:-1] == half[1:]).mean() - 0.5) < 0.01
    assert abs((half[:, :-1] == half[:, 1:]).mean() - 0.5) < 0.01
    # nor xor-linked: over random rectangles the four corners' parity is odd half the time
    rng = np.random.default_rng(0)
    r, c = rng.integers(0, 512, (2, 20000, 2))
    parity = (half[r[:, 0], c[:, 0]] ^ half[r[:, 0], c[:, 1]] ^ half[r[:, 1], c[:, 0]]
              ^ half[r[:, 1], c[:, 1]])
    assert abs(parity.mean() - 0.5) < 0.015
    other = xnn.to_numpy(random.random_bits(xp, (512, 512), 12346, "cpu")) < 2**31
    assert abs((half == other).mean() - 0.5) < 0.01


@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_bernoulli_keeps_a_fraction_p_exactly_at_the_ends(backend, p):
    xnn.seed(3)
    mask = xnn.to_numpy(random.bernoulli((300, 200), p, dtype="float32"))
    assert set(np.unique(mask)) <= {0.0, 1.0}
    if p in (0.0, 1.0):
        assert mask.mean() == p
    else:
        assert abs(mask.mean() - p) < 0.01


def test_bernoulli_masks_follow_the_seed_and_the_saved_state(backend):
    xnn.seed(5)
    first = xnn.to_numpy(random.bernoulli((6, 6), 0.5))
    state = random.get_state()
    second = xnn.to_numpy(random.bernoulli((6, 6), 0.5))
    random.set_state(state)
    np.testing.assert_array_equal(xnn.to_numpy(random.bernoulli((6, 6), 0.5)), second)
    assert not np.array_equal(first, second)
    xnn.seed(5)
    np.testing.assert_array_equal(xnn.to_numpy(random.bernoulli((6, 6), 0.5)), first)


def test_seed_takes_numpy_integers_as_fit_does():
    xnn.seed(np.int64(3))
    first = random.permutation(10)
    xnn.seed(3)
    np.testing.assert_array_equal(random.permutation(10), first)


@pytest.mark.parametrize("value, error", [(-1, ValueError), (1.5, TypeError), (True, TypeError),
                                          ("3", TypeError)])
def test_seed_refuses_what_is_not_a_non_negative_int(value, error):
    with pytest.raises(error, match=r"seed: seed must be an int"):
        xnn.seed(value)


def test_use_seed_draws_from_its_own_generator_and_leaves_the_global_one_alone():
    xnn.seed(1)
    state = random.get_state()
    with random.use_seed(7):
        inside = random.permutation(10)
        random.seed(8)  # reseeds the block's generator, not the process-wide one
    assert random.get_state() == state
    with random.use_seed(7):
        np.testing.assert_array_equal(random.permutation(10), inside)
    xnn.seed(7)
    np.testing.assert_array_equal(random.permutation(10), inside)


def test_use_seed_is_local_to_the_thread_that_enters_it():
    import threading

    xnn.seed(2)
    expected = random.permutation(10)
    xnn.seed(2)
    seen = []
    with random.use_seed(5):
        worker = threading.Thread(target=lambda: seen.append(random.permutation(10)))
        worker.start()
        worker.join()
    np.testing.assert_array_equal(seen[0], expected)


def test_compare_backends_leaves_the_process_generator_as_it_was():
    xnn.seed(3)
    state = random.get_state()
    X, y = xnn.datasets.xor(dtype="float64")
    xnn.testing.compare_backends(lambda: xnn.tutorials.xor(), X, y, loss=xnn.losses.MSELoss(),
                                 optimizer=lambda ps: xnn.optim.SGD(ps, lr=0.5), steps=3,
                                 backends=["numpy", "array_api_strict"])
    assert random.get_state() == state


@pytest.mark.parametrize("n", [0, 1, 203, 2 ** 20 - 1, 2 ** 20, 3_000_017])
def test_a_permutation_is_the_generators_own_draw_in_half_the_memory_when_large(n):
    drawn, reference = np.random.default_rng(7), np.random.default_rng(7)
    rows = random.permutation(n, drawn)
    np.testing.assert_array_equal(rows, reference.permutation(n))
    # 4 bytes a row from 2^20 rows: a fit's order is its one array growing with the rows
    assert rows.dtype == (np.int32 if n >= 2 ** 20 else np.int64)
    assert drawn.random() == reference.random()  # the same draws were taken
    xnn.seed(3)
    first = random.permutation(n)
    xnn.seed(3)
    np.testing.assert_array_equal(first, random.permutation(n))


@pytest.mark.parametrize("draw, message", [
    (lambda: random.normal((2,), std=-1), r"normal: std must be a number in \[0.0, inf\), got -1"),
    (lambda: random.uniform((2,), 1.0, 0.0), r"uniform: high must be a number in \[1.0, inf\)"),
    (lambda: random.bernoulli((2,), 1.2), r"bernoulli: p must be a number in \[0, 1\], got 1.2"),
    (lambda: random.bernoulli((2,), float("nan")), r"bernoulli: p must be a number in \[0, 1\]"),
], ids=["negative-std", "high-below-low", "p-above-1", "p-nan"])
def test_random_draws_refuse_impossible_parameters_before_drawing(backend, draw, message):
    state = random.get_state()
    with pytest.raises(ValueError, match=message):
        draw()
    assert random.get_state() == state  # nothing drawn
