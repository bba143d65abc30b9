"""Compact codecs for the *positions* of the kept entries of a sparse tensor.

A sparse tensor of ``n`` entries that keeps ``k`` of them is described by the sorted, unique
flat indices of the kept entries, a subset of ``[0, n)``. This module turns such an index set
into a headerless byte payload whose size is a pure function of ``(encoding, n, k)``, and back,
staying close to the information bound ``log2 C(n, k)`` bits. Four encodings exist:
``"empty"`` (``k == 0``, 0 bytes), ``"full"`` (``k == n``, 0 bytes), ``"bitmask"`` (an ``n``-bit
presence vector, ``ceil(n / 8)`` bytes) and ``"elias_fano"``, the quasi-succinct monotone
sequence representation of Elias (1974, "Efficient storage and retrieval by content and address
of static files", J. ACM 21(2)) and Fano (1971, "On the number of bits required to implement an
associative memory", MIT Project MAC memo 61). Everything is vectorised with numpy; decoding
validates the payload and raises :class:`CodecError` on anything inconsistent.

Elias-Fano layout used here, for ``k`` positions ``p_0 < ... < p_{k-1}`` out of ``n``:

* ``L = _elias_fano_low_bits(n, k)`` low bits per element: ``max(0, floor(log2(n / k)))``,
  replaced by a neighbouring value (``L - 1`` or ``L + 1``) when that gives a strictly smaller
  payload; for ``k == 0`` it is ``bit_length(n - 1)`` so that the high part is a single bit.
* Low parts ``p_i & (2**L - 1)`` are written MSB-first, element after element, into a
  ``k * L``-bit vector packed with ``np.packbits`` (bit order ``'big'``): ``ceil(k * L / 8)``
  bytes, zero padded.
* High parts ``h_i = p_i >> L`` are stored as a bitvector of ``k + ((n - 1) >> L) + 1`` bits in
  which bit ``h_i + i`` is set (unary-coded gaps), packed the same way, zero padded.
* payload = low bytes followed by high bytes. Both sizes follow from ``(n, k)``: no header.

The bitmask is ``np.packbits`` of the ``n``-bit presence vector (bit order ``'big'``), with the
``8 * ceil(n / 8) - n`` padding bits zero.
"""

from __future__ import annotations

import math
import operator

import numpy as np

from .errors import SpadaptError

__all__ = [
    "ENCODINGS",
    "CodecError",
    "choose_encoding",
    "decode_positions",
    "encode_positions",
    "encoded_size",
    "information_bound_bits",
]

ENCODINGS: tuple[str, ...] = ("empty", "full", "bitmask", "elias_fano")


class CodecError(SpadaptError):
    """Raised for invalid arguments or an inconsistent / corrupt payload."""


# --------------------------------------------------------------------------- helpers


def _as_count(value: object, name: str) -> int:
    """Return ``value`` as a non-negative Python int, else raise CodecError."""
    if isinstance(value, (bool, np.bool_)):
        raise CodecError(f"{name} must be an integer, got bool {value!r}")
    try:
        result = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise CodecError(f"{name} must be an integer, got {type(value).__name__}") from None
    if result < 0:
        raise CodecError(f"{name} must be >= 0, got {result}")
    return result


def _check_n_k(n: object, k: object) -> tuple[int, int]:
    """Validate ``0 <= k <= n`` and return both as Python ints."""
    n_int = _as_count(n, "n")
    k_int = _as_count(k, "k")
    if k_int > n_int:
        raise CodecError(f"k={k_int} exceeds n={n_int}")
    return n_int, k_int


def _check_encoding(encoding: object) -> str:
    if encoding not in ENCODINGS:
        raise CodecError(f"unknown encoding {encoding!r}; expected one of {ENCODINGS}")
    return str(encoding)


def _ceil_div8(bits: int) -> int:
    return -(-bits // 8)


def _ef_high_bits(n: int, k: int, low_bits: int) -> int:
    """Length in bits of the Elias-Fano high bitvector (0 when n == 0)."""
    if n == 0:
        return 0
    return k + ((n - 1) >> low_bits) + 1


def _ef_size(n: int, k: int, low_bits: int) -> int:
    return _ceil_div8(k * low_bits) + _ceil_div8(_ef_high_bits(n, k, low_bits))


def _elias_fano_low_bits(n: int, k: int) -> int:
    """Number of low bits per element of the Elias-Fano layout, a pure function of (n, k).

    ``max(0, floor(log2(n / k)))`` (computed exactly on integers), moved to ``L - 1`` or
    ``L + 1`` if that makes the exact payload strictly smaller (the smaller ``L`` wins a tie
    between the two neighbours). For ``k == 0`` it is ``bit_length(n - 1)``, making the high
    part one bit long.
    """
    n, k = _check_n_k(n, k)
    if n == 0:
        return 0
    if k == 0:
        return (n - 1).bit_length()
    base = (n // k).bit_length() - 1  # floor(log2(n / k)) since n // k >= 1
    best, best_size = base, _ef_size(n, k, base)
    for cand in (base - 1, base + 1):
        if cand >= 0 and _ef_size(n, k, cand) < best_size:
            best, best_size = cand, _ef_size(n, k, cand)
    return best


def _unpack_exact(buf: np.ndarray, nbits: int, what: str) -> np.ndarray:
    """Unpack ``buf`` to ``nbits`` bits, checking that the padding bits are zero."""
    bits = np.unpackbits(buf)
    if bits[nbits:].any():
        extra = int(np.flatnonzero(bits[nbits:])[0])
        raise CodecError(f"{what} has a padding bit set at bit {nbits + extra} (length {nbits})")
    return bits[:nbits]


def _payload_array(payload: object) -> np.ndarray:
    if isinstance(payload, memoryview):
        payload = payload.tobytes()
    if not isinstance(payload, (bytes, bytearray)):
        raise CodecError(f"payload must be bytes-like, got {type(payload).__name__}")
    return np.frombuffer(payload, dtype=np.uint8)


def _validate_positions(positions: object, n: int) -> np.ndarray:
    """Return ``positions`` as int64 after checking it is 1-D, integer, increasing, in range."""
    arr = np.asarray(positions)
    if arr.ndim != 1:
        raise CodecError(f"positions must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        return np.empty(0, dtype=np.int64)
    if arr.dtype.kind not in "iu":
        raise CodecError(f"positions must have an integer dtype, got {arr.dtype}")
    bad_range = np.flatnonzero((arr < 0) | (arr >= n))
    first_range = int(bad_range[0]) if bad_range.size else arr.size
    arr64 = arr[:first_range].astype(np.int64)
    bad_order = np.flatnonzero(arr64[1:] <= arr64[:-1])
    first_order = int(bad_order[0]) + 1 if bad_order.size else arr.size
    if first_order < first_range:
        i = first_order
        kind = "duplicate" if arr64[i] == arr64[i - 1] else "not increasing"
        raise CodecError(
            f"positions must be strictly increasing: positions[{i}]={int(arr64[i])} after "
            f"positions[{i - 1}]={int(arr64[i - 1])} ({kind})"
        )
    if first_range < arr.size:
        raise CodecError(
            f"position out of range: positions[{first_range}]={int(arr[first_range])} "
            f"not in [0, {n})"
        )
    return arr64


# --------------------------------------------------------------------------- public API


def information_bound_bits(n: int, k: int) -> float:
    """log2 C(n, k), computed with math.lgamma (exact enough for n up to 1e9)."""
    n, k = _check_n_k(n, k)
    if k == 0 or k == n:
        return 0.0
    ln = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
    return max(0.0, ln / math.log(2))


def encoded_size(encoding: str, n: int, k: int) -> int:
    """Exact number of payload bytes the encoding takes for k positions out of n.

    Raises CodecError when the encoding cannot represent ``(n, k)`` ("empty" needs ``k == 0``,
    "full" needs ``k == n``).
    """
    encoding = _check_encoding(encoding)
    n, k = _check_n_k(n, k)
    if encoding == "empty":
        if k != 0:
            raise CodecError(f"encoding 'empty' requires k=0, got k={k} (n={n})")
        return 0
    if encoding == "full":
        if k != n:
            raise CodecError(f"encoding 'full' requires k=n, got k={k} (n={n})")
        return 0
    if encoding == "bitmask":
        return _ceil_div8(n)
    return _ef_size(n, k, _elias_fano_low_bits(n, k))


def choose_encoding(n: int, k: int) -> str:
    """The encoding with the fewest bytes: 'empty' when k == 0, 'full' when k == n (both 0
    bytes), else the smaller of 'bitmask' (ceil(n/8) bytes) and 'elias_fano'; ties go to
    bitmask."""
    n, k = _check_n_k(n, k)
    if k == 0:
        return "empty"
    if k == n:
        return "full"
    if encoded_size("elias_fano", n, k) < encoded_size("bitmask", n, k):
        return "elias_fano"
    return "bitmask"


def _encode_bitmask(pos: np.ndarray, n: int) -> bytes:
    bits = np.zeros(n, dtype=np.uint8)
    bits[pos] = 1
    return np.packbits(bits).tobytes()


def _encode_elias_fano(pos: np.ndarray, n: int) -> bytes:
    k = pos.size
    low_bits = _elias_fano_low_bits(n, k)
    if low_bits > 0 and k > 0:
        shifts = np.arange(low_bits - 1, -1, -1, dtype=np.int64)
        low = ((pos[:, None] >> shifts) & 1).astype(np.uint8).ravel()
        low_bytes = np.packbits(low).tobytes()
    else:
        low_bytes = b""
    high = np.zeros(_ef_high_bits(n, k, low_bits), dtype=np.uint8)
    high[(pos >> low_bits) + np.arange(k, dtype=np.int64)] = 1
    return low_bytes + np.packbits(high).tobytes()


def encode_positions(
    positions: np.ndarray, n: int, encoding: str | None = None
) -> tuple[str, bytes]:
    """positions: 1-D int array, strictly increasing, all in [0, n). Validates that (CodecError
    otherwise, naming the first offending index). encoding None = choose_encoding. Returns
    (encoding, payload)."""
    n = _as_count(n, "n")
    pos = _validate_positions(positions, n)
    k = int(pos.size)
    if encoding is None:
        encoding = choose_encoding(n, k)
    encoding = _check_encoding(encoding)
    encoded_size(encoding, n, k)  # raises if the encoding cannot represent (n, k)
    if encoding in ("empty", "full"):
        payload = b""
    elif encoding == "bitmask":
        payload = _encode_bitmask(pos, n)
    else:
        payload = _encode_elias_fano(pos, n)
    return encoding, payload


def _decode_bitmask(buf: np.ndarray, n: int, k: int) -> np.ndarray:
    bits = _unpack_exact(buf, n, "bitmask")
    pos = np.flatnonzero(bits).astype(np.int64)
    if pos.size != k:
        raise CodecError(f"bitmask has {pos.size} bits set, expected k={k} (n={n})")
    return pos


def _decode_elias_fano(buf: np.ndarray, n: int, k: int) -> np.ndarray:
    low_bits = _elias_fano_low_bits(n, k)
    n_low = _ceil_div8(k * low_bits)
    n_high = _ef_high_bits(n, k, low_bits)
    high = _unpack_exact(buf[n_low:], n_high, "elias_fano high part")
    ones = np.flatnonzero(high).astype(np.int64)
    if ones.size != k:
        raise CodecError(
            f"elias_fano high part has {ones.size} bits set, expected k={k} (n={n}, L={low_bits})"
        )
    pos = (ones - np.arange(k, dtype=np.int64)) << low_bits
    if low_bits > 0 and k > 0:
        low = _unpack_exact(buf[:n_low], k * low_bits, "elias_fano low part")
        low = low.reshape(k, low_bits).astype(np.int64)
        for col in range(low_bits):  # loop over bit planes (L <= 63), vectorised over elements
            pos |= low[:, col] << (low_bits - 1 - col)
    if k > 1:
        bad = np.flatnonzero(pos[1:] <= pos[:-1])
        if bad.size:
            i = int(bad[0]) + 1
            raise CodecError(
                f"elias_fano decodes to a non-increasing sequence: value[{i}]={int(pos[i])} "
                f"after value[{i - 1}]={int(pos[i - 1])} (n={n}, k={k})"
            )
    if k > 0 and pos[-1] >= n:
        raise CodecError(f"elias_fano decodes to value {int(pos[-1])} >= n={n} (k={k})")
    return pos


def decode_positions(encoding: str, payload: bytes, n: int, k: int) -> np.ndarray:
    """Inverse of encode_positions; returns int64 array of length k, strictly increasing, in
    [0, n). Validates the payload length, that a bitmask has exactly k set bits and no bits set
    past n, that Elias-Fano decodes to exactly k strictly increasing values < n; raises
    CodecError with a clear message on anything else (never IndexError/numpy errors)."""
    encoding = _check_encoding(encoding)
    n, k = _check_n_k(n, k)
    buf = _payload_array(payload)
    expected = encoded_size(encoding, n, k)
    if buf.size != expected:
        raise CodecError(
            f"{encoding} payload has {buf.size} bytes, expected {expected} for n={n}, k={k}"
        )
    if encoding == "empty":
        return np.empty(0, dtype=np.int64)
    if encoding == "full":
        return np.arange(n, dtype=np.int64)
    if encoding == "bitmask":
        return _decode_bitmask(buf, n, k)
    return _decode_elias_fano(buf, n, k)
