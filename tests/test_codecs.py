"""Tests for spadapt.codecs: round trips, sizes vs the information bound, corrupt payloads."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spadapt.codecs import (
    ENCODINGS,
    CodecError,
    _elias_fano_low_bits,
    choose_encoding,
    decode_positions,
    encode_positions,
    encoded_size,
    information_bound_bits,
)

DENSITIES = (0.005, 0.05, 0.2, 0.6)


def _random_positions(n: int, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=k, replace=False)).astype(np.int64)


def _applicable(n: int, k: int) -> list[str]:
    out = ["bitmask", "elias_fano"]
    if k == 0:
        out.append("empty")
    if k == n:
        out.append("full")
    return out


def _roundtrip(pos: np.ndarray, n: int, encoding: str | None) -> str:
    enc, payload = encode_positions(pos, n, encoding)
    assert isinstance(payload, bytes)
    assert len(payload) == encoded_size(enc, n, pos.size)
    out = decode_positions(enc, payload, n, pos.size)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, pos)
    return enc


# ---------------------------------------------------------------- round trips


EDGE_CASES = [
    (n, k)
    for n in (1, 2, 7, 8, 9, 15, 16, 17, 100, 1000)
    for k in sorted({0, 1, n // 3, n // 2, n - 1, n})
    if 0 <= k <= n
]


@pytest.mark.parametrize(("n", "k"), EDGE_CASES)
def test_roundtrip_edge_cases(n: int, k: int) -> None:
    for seed in range(3):
        pos = _random_positions(n, k, seed)
        for enc in [None, *_applicable(n, k)]:
            _roundtrip(pos, n, enc)
    # deterministic extremes: the first k and the last k indices
    for pos in (np.arange(k, dtype=np.int64), np.arange(n - k, n, dtype=np.int64)):
        for enc in [None, *_applicable(n, k)]:
            _roundtrip(pos, n, enc)


def test_roundtrip_n_zero() -> None:
    pos = np.empty(0, dtype=np.int64)
    for enc in (None, "empty", "full", "bitmask", "elias_fano"):
        got = _roundtrip(pos, 0, enc)
        assert encoded_size(got, 0, 0) == 0


def test_roundtrip_exhaustive_small() -> None:
    # every subset of [0, n) for n <= 9, both non-trivial encodings
    for n in range(1, 10):
        for mask in range(1 << n):
            pos = np.array([i for i in range(n) if mask >> i & 1], dtype=np.int64)
            for enc in (None, "bitmask", "elias_fano"):
                _roundtrip(pos, n, enc)


@pytest.mark.parametrize("n", [24576, 589824])
@pytest.mark.parametrize("density", DENSITIES)
def test_roundtrip_random(n: int, density: float) -> None:
    k = round(density * n)
    pos = _random_positions(n, k, seed=int(density * 1000) + n)
    for enc in (None, "bitmask", "elias_fano"):
        _roundtrip(pos, n, enc)


def test_roundtrip_clustered_and_large_n() -> None:
    # positions packed at both ends (big high-part gaps), and n far above the test sizes
    n = 1_000_000
    pos = np.concatenate([np.arange(1000), np.arange(n - 1000, n)]).astype(np.int64)
    for enc in (None, "bitmask", "elias_fano"):
        _roundtrip(pos, n, enc)
    n = 10**9
    pos = _random_positions(10**6, 500, seed=3) * 997
    assert _roundtrip(pos, n, None) == "elias_fano"


def test_accepts_other_integer_dtypes_and_lists() -> None:
    n = 50
    ref = np.array([1, 5, 9, 49], dtype=np.int64)
    for arr in (ref.astype(np.uint8), ref.astype(np.int32), ref.astype(np.uint64), ref.tolist()):
        enc, payload = encode_positions(arr, n)
        np.testing.assert_array_equal(decode_positions(enc, payload, n, 4), ref)
    enc, payload = encode_positions([], n)
    assert enc == "empty" and payload == b""
    # bytearray / memoryview payloads decode too
    enc, payload = encode_positions(ref, n, "elias_fano")
    for p in (bytearray(payload), memoryview(payload)):
        np.testing.assert_array_equal(decode_positions(enc, p, n, 4), ref)


# ---------------------------------------------------------------- sizes


def test_encoded_size_formulas() -> None:
    for n in (1, 7, 8, 9, 1000, 24576):
        assert encoded_size("bitmask", n, 1) == math.ceil(n / 8)
        assert encoded_size("empty", n, 0) == 0
        assert encoded_size("full", n, n) == 0
        for k in (1, n // 2 or 1, n):
            low = _elias_fano_low_bits(n, k)
            expected = math.ceil(k * low / 8) + math.ceil((k + ((n - 1) >> low) + 1) / 8)
            assert encoded_size("elias_fano", n, k) == expected
    # a documented example from the error-message format
    assert encoded_size("elias_fano", 24576, 123) == 148
    with pytest.raises(CodecError):
        encoded_size("empty", 10, 1)
    with pytest.raises(CodecError):
        encoded_size("full", 10, 9)
    with pytest.raises(CodecError):
        encoded_size("nope", 10, 1)
    with pytest.raises(CodecError):
        encoded_size("bitmask", 10, 11)
    with pytest.raises(CodecError):
        encoded_size("bitmask", -1, 0)


def test_low_bits_rule() -> None:
    for n, k in [(24576, 123), (24576, 1229), (24576, 4915), (589824, 2949), (100, 3), (9, 4)]:
        base = max(0, math.floor(math.log2(n / k)))
        low = _elias_fano_low_bits(n, k)
        assert abs(low - base) <= 1

        def size(b: int, n: int = n, k: int = k) -> int:
            return math.ceil(k * b / 8) + math.ceil((k + ((n - 1) >> b) + 1) / 8)

        assert size(low) == min(size(b) for b in range(max(0, base - 1), base + 2))
        assert size(low) == encoded_size("elias_fano", n, k)


def test_choose_encoding_picks_smallest() -> None:
    assert choose_encoding(10, 0) == "empty"
    assert choose_encoding(10, 10) == "full"
    assert choose_encoding(0, 0) == "empty"
    for n in (1, 2, 7, 8, 9, 64, 1000, 24576):
        for k in range(1, n, max(1, n // 97)):
            chosen = choose_encoding(n, k)
            bm, ef = encoded_size("bitmask", n, k), encoded_size("elias_fano", n, k)
            assert encoded_size(chosen, n, k) == min(bm, ef)
            assert chosen == ("elias_fano" if ef < bm else "bitmask")


def test_information_bound() -> None:
    assert information_bound_bits(10, 0) == 0.0
    assert information_bound_bits(10, 10) == 0.0
    assert information_bound_bits(10, 1) == pytest.approx(math.log2(10))
    assert information_bound_bits(60, 30) == pytest.approx(math.log2(math.comb(60, 30)))
    assert information_bound_bits(24576, 1229) == pytest.approx(
        math.log2(math.comb(24576, 1229)), rel=1e-9
    )
    # n = 1e9 still sane: ~ k * (log2(n / k) + log2(e)) for k << n
    bound = information_bound_bits(10**9, 1000)
    assert bound == pytest.approx(1000 * (math.log2(10**6) + math.log2(math.e)), rel=1e-3)


# Worst size / (bound/8 + 2) over the best of bitmask and Elias-Fano (any L), n = 24576. The
# brief asked for <= 1.10 everywhere in 0.005..0.6, but with only these two layouts that is not
# achievable around density 0.1-0.3: at 0.2 the best is Elias-Fano with L=2 at 2612 bytes
# (L=1: 2766, L=3: 2843, bitmask: 3072) vs a bound of 2217 bytes, i.e. 1.177x. So 0.2 gets its
# own measured ceiling; the rest meet 1.10.
RATIO_CEILING = {0.005: 1.10, 0.05: 1.10, 0.2: 1.18, 0.6: 1.10}


@pytest.mark.parametrize("density", DENSITIES)
def test_size_close_to_information_bound(density: float) -> None:
    n = 24576
    k = round(density * n)
    pos = _random_positions(n, k, seed=7)
    enc, payload = encode_positions(pos, n)
    bound_bytes = information_bound_bits(n, k) / 8
    ratio = len(payload) / (bound_bytes + 2)
    print(
        f"n={n} density={density} k={k}: {enc} {len(payload)} B, bound {bound_bytes:.1f} B, "
        f"size/bound={len(payload) / bound_bytes:.4f}, size/(bound+2)={ratio:.4f}"
    )
    assert ratio <= RATIO_CEILING[density]
    # and the chosen size is optimal among bitmask and Elias-Fano with any number of low bits
    best_ef = min(math.ceil(k * b / 8) + math.ceil((k + ((n - 1) >> b) + 1) / 8) for b in range(16))
    assert len(payload) == min(best_ef, math.ceil(n / 8))


# ---------------------------------------------------------------- corrupt payloads


def _payload(n: int, k: int, encoding: str, seed: int = 0) -> tuple[np.ndarray, bytes]:
    pos = _random_positions(n, k, seed)
    enc, payload = encode_positions(pos, n, encoding)
    assert enc == encoding
    return pos, payload


@pytest.mark.parametrize("encoding", ["bitmask", "elias_fano"])
@pytest.mark.parametrize(("n", "k"), [(24576, 123), (24576, 4915), (9, 4), (1000, 999)])
def test_truncated_or_extended_payload(encoding: str, n: int, k: int) -> None:
    _, payload = _payload(n, k, encoding)
    with pytest.raises(CodecError, match=rf"{encoding} payload has \d+ bytes, expected"):
        decode_positions(encoding, payload[:-1], n, k)
    with pytest.raises(CodecError, match="expected"):
        decode_positions(encoding, payload + b"\x00", n, k)
    with pytest.raises(CodecError):
        decode_positions(encoding, b"", n, k)


def test_empty_full_payload_must_be_empty() -> None:
    with pytest.raises(CodecError):
        decode_positions("empty", b"\x00", 10, 0)
    with pytest.raises(CodecError):
        decode_positions("full", b"\x00", 10, 10)
    with pytest.raises(CodecError):
        decode_positions("empty", b"", 10, 3)
    with pytest.raises(CodecError):
        decode_positions("full", b"", 10, 3)


def test_error_message_names_sizes() -> None:
    n, k = 24576, 123
    _, payload = _payload(n, k, "elias_fano")
    with pytest.raises(CodecError) as info:
        decode_positions("elias_fano", payload[:37], n, k)
    assert str(info.value) == "elias_fano payload has 37 bytes, expected 148 for n=24576, k=123"


@pytest.mark.parametrize(("n", "k"), [(24576, 4915), (24576, 14746), (9, 4), (17, 1)])
def test_bitmask_bit_flip(n: int, k: int) -> None:
    _, payload = _payload(n, k, "bitmask")
    rng = np.random.default_rng(1)
    for bit in rng.choice(n, size=min(n, 20), replace=False):
        corrupt = bytearray(payload)
        corrupt[bit // 8] ^= 0x80 >> (bit % 8)
        with pytest.raises(CodecError, match="bitmask has"):
            decode_positions("bitmask", bytes(corrupt), n, k)


@pytest.mark.parametrize("n", [9, 10, 15, 24573])
def test_bitmask_bits_past_n(n: int) -> None:
    k = 3
    _, payload = _payload(n, k, "bitmask")
    corrupt = bytearray(payload)
    corrupt[-1] |= 0x01  # last padding bit (n is not a multiple of 8)
    with pytest.raises(CodecError, match="padding bit"):
        decode_positions("bitmask", bytes(corrupt), n, k)
    # also when the total number of set bits happens to still equal k
    corrupt = bytearray(payload)
    first = int(np.flatnonzero(np.unpackbits(np.frombuffer(payload, np.uint8)))[0])
    corrupt[first // 8] ^= 0x80 >> (first % 8)
    corrupt[-1] |= 0x01
    with pytest.raises(CodecError, match="padding bit"):
        decode_positions("bitmask", bytes(corrupt), n, k)


@pytest.mark.parametrize(("n", "k"), [(24576, 123), (24576, 1229), (589824, 2949), (9, 4)])
def test_elias_fano_high_bit_cleared(n: int, k: int) -> None:
    _, payload = _payload(n, k, "elias_fano")
    low_bytes = math.ceil(k * _elias_fano_low_bits(n, k) / 8)
    high = np.unpackbits(np.frombuffer(payload[low_bytes:], np.uint8))
    ones = np.flatnonzero(high)
    for bit in (ones[0], ones[len(ones) // 2], ones[-1]):
        corrupt = bytearray(payload)
        corrupt[low_bytes + bit // 8] &= ~(0x80 >> (bit % 8)) & 0xFF
        with pytest.raises(CodecError, match="high part has"):
            decode_positions("elias_fano", bytes(corrupt), n, k)


def test_elias_fano_inconsistent_values() -> None:
    # decodes to k values, but one is >= n
    n, k = 24576, 123
    _, payload = _payload(n, k, "elias_fano")
    low_bytes = math.ceil(k * _elias_fano_low_bits(n, k) / 8)
    n_high = k + ((n - 1) >> _elias_fano_low_bits(n, k)) + 1
    high = np.unpackbits(np.frombuffer(payload[low_bytes:], np.uint8))[:n_high].copy()
    last = int(np.flatnonzero(high)[-1])
    assert last != n_high - 1
    high[last], high[n_high - 1] = 0, 1  # move the last element's high part to the maximum
    corrupt = payload[:low_bytes] + np.packbits(high).tobytes()
    low = np.unpackbits(np.frombuffer(corrupt[:low_bytes], np.uint8))
    assert len(corrupt) == len(payload) and low.size > 0
    with pytest.raises(CodecError, match=">= n"):
        decode_positions("elias_fano", corrupt, n, k)
    # two equal values: same high bucket, same low bits -> not strictly increasing
    n, k = 64, 2
    assert _elias_fano_low_bits(n, k) > 0
    _, payload = encode_positions(np.array([0, 1]), n, "elias_fano")
    corrupt = bytearray(payload)
    corrupt[0] = 0  # both low parts zero; both in high bucket 0
    with pytest.raises(CodecError, match="non-increasing"):
        decode_positions("elias_fano", bytes(corrupt), n, k)


def test_elias_fano_padding_bits() -> None:
    n, k = 24576, 123  # 861 low bits (3 padding), 315 high bits (5 padding)
    _, payload = _payload(n, k, "elias_fano")
    low_bytes = math.ceil(k * _elias_fano_low_bits(n, k) / 8)
    for idx in (low_bytes - 1, len(payload) - 1):
        corrupt = bytearray(payload)
        corrupt[idx] |= 0x01
        with pytest.raises(CodecError, match="padding bit"):
            decode_positions("elias_fano", bytes(corrupt), n, k)


def test_random_corruption_never_leaks_other_errors() -> None:
    # any single byte change either still decodes to a valid set or raises CodecError
    rng = np.random.default_rng(5)
    for n, k, enc in [(1000, 50, "elias_fano"), (1000, 300, "bitmask"), (100, 99, "elias_fano")]:
        _, payload = _payload(n, k, enc)
        for _ in range(300):
            corrupt = bytearray(payload)
            corrupt[rng.integers(len(corrupt))] = rng.integers(256)
            try:
                out = decode_positions(enc, bytes(corrupt), n, k)
            except CodecError:
                continue
            assert out.size == k and (k < 2 or np.all(np.diff(out) > 0))
            assert out.size == 0 or (out[0] >= 0 and out[-1] < n)
            assert encode_positions(out, n, enc)[1] == bytes(corrupt)


def test_bad_decode_arguments() -> None:
    with pytest.raises(CodecError, match="unknown encoding"):
        decode_positions("rle", b"", 10, 1)
    with pytest.raises(CodecError, match="exceeds"):
        decode_positions("bitmask", b"\x00\x00", 10, 11)
    with pytest.raises(CodecError, match="bytes-like"):
        decode_positions("bitmask", "ab", 10, 1)  # type: ignore[arg-type]
    with pytest.raises(CodecError, match="bytes-like"):
        decode_positions("bitmask", 2, 10, 1)  # type: ignore[arg-type]
    with pytest.raises(CodecError):
        decode_positions("bitmask", b"\x00\x00", 10, -1)


# ---------------------------------------------------------------- invalid positions


def test_encode_rejects_bad_positions() -> None:
    n = 100
    with pytest.raises(CodecError, match=r"positions\[2\]=5 after positions\[1\]=7"):
        encode_positions(np.array([1, 7, 5, 9]), n)
    with pytest.raises(CodecError, match=r"positions\[2\]=7 .*duplicate"):
        encode_positions(np.array([1, 7, 7, 9]), n)
    with pytest.raises(CodecError, match=r"positions\[3\]=100 not in \[0, 100\)"):
        encode_positions(np.array([1, 7, 8, 100]), n)
    with pytest.raises(CodecError, match=r"positions\[0\]=-1"):
        encode_positions(np.array([-1, 7, 8]), n)
    # the first offending index wins, whichever the kind
    with pytest.raises(CodecError, match=r"positions\[1\]"):
        encode_positions(np.array([5, 3, 200]), n)
    with pytest.raises(CodecError, match=r"positions\[1\]=200"):
        encode_positions(np.array([5, 200, 3]), n)
    with pytest.raises(CodecError, match=r"positions\[1\]=18446744073709551615"):
        encode_positions(np.array([5, 2**64 - 1], dtype=np.uint64), n)
    with pytest.raises(CodecError, match="integer dtype"):
        encode_positions(np.array([1.0, 2.0]), n)
    with pytest.raises(CodecError, match="integer dtype"):
        encode_positions(np.array([True, False]), n)
    with pytest.raises(CodecError, match="1-D"):
        encode_positions(np.array([[1, 2]]), n)
    with pytest.raises(CodecError):
        encode_positions(np.array([0]), 0)
    for enc in ENCODINGS:  # every encoding validates
        with pytest.raises(CodecError):
            encode_positions(np.array([3, 3]), n, enc)


def test_encode_rejects_unrepresentable_encoding() -> None:
    with pytest.raises(CodecError, match="'empty' requires k=0"):
        encode_positions(np.array([1]), 10, "empty")
    with pytest.raises(CodecError, match="'full' requires k=n"):
        encode_positions(np.array([1]), 10, "full")
    with pytest.raises(CodecError, match="unknown encoding"):
        encode_positions(np.array([1]), 10, "gzip")
    with pytest.raises(CodecError):
        encode_positions(np.array([1]), -5)
