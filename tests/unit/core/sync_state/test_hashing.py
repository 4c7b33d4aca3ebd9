"""Key hashes and fingerprints: XXH3 64-bit, the same one item at a time and vectorised."""

from __future__ import annotations

import msgspec
import numpy as np
import pyarrow as pa
import xxhash

from airflow_provider_optimizely.core.sync_state import fingerprint, fingerprints, key_hash, key_hashes


def test_a_key_hash_is_xxh3_of_its_utf8_text():
    assert key_hash("user-1") == xxhash.xxh3_64_intdigest(b"user-1")
    assert key_hash("zoë") == xxhash.xxh3_64_intdigest("zoë".encode())


def test_vectorised_hashes_equal_one_at_a_time():
    keys = ["a", "zoë", "", "user-42"]
    expected = [key_hash(k) for k in keys]
    assert key_hashes(keys).tolist() == expected
    assert key_hashes(pa.array(keys)).tolist() == expected
    assert key_hashes(keys).dtype == np.uint64


def test_a_key_that_is_not_valid_unicode_still_hashes():
    keys = ["ok", "bad\udc80"]
    hashes = key_hashes(keys)
    assert hashes[0] == key_hash("ok")
    assert hashes[1] == key_hash("bad\udc80") != key_hash("bad")


def test_fingerprints_of_bytes_raw_and_arrow_agree():
    payloads = [b'{"a":1}', b'{"a":2}', b""]
    expected = [fingerprint(p) for p in payloads]
    assert fingerprints(payloads).tolist() == expected
    assert fingerprints([msgspec.Raw(p) for p in payloads]).tolist() == expected
    assert fingerprints(pa.array([p.decode() for p in payloads])).tolist() == expected
    assert fingerprints(pa.array(payloads, pa.binary())).tolist() == expected
    assert fingerprints(iter(payloads)).tolist() == expected
