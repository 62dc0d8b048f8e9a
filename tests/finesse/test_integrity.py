"""No pickle ever; canonical hashing; content hash and HMAC signature of results."""

from __future__ import annotations

import pickle
import zipfile

import numpy as np
import pytest

from vbert.files import canonical_json
from vbert.finesse.integrity import check, content_hash, read_key, seal
from vbert.finesse.storage import UnsafeFileError, load_npz, save_npz

RESULTS = {
    "metric": "rss",
    "summary": {"mean_score": 12.345678, "median_latency_full_ms": 3.5},
    "lengths": {"4": {"scores": [10.0, 14.691356], "td": [0.01, 0.02]}},
    "competitor": {"name": "mean"},
}


def test_npz_round_trip(tmp_path):
    arrays = {"chunks": np.arange(12, dtype=np.float32).reshape(3, 4), "ms": np.array([1.5, 2.5])}
    save_npz(tmp_path / "a.npz", arrays)
    loaded = load_npz(tmp_path / "a.npz")
    assert set(loaded) == {"chunks", "ms"}
    np.testing.assert_array_equal(loaded["chunks"], arrays["chunks"])


def test_object_arrays_are_never_written(tmp_path):
    with pytest.raises(TypeError, match="never pickle"):
        save_npz(tmp_path / "a.npz", {"bad": np.array([{"a": 1}], dtype=object)})


def test_npz_with_a_pickled_object_array_is_refused(tmp_path):
    path = tmp_path / "length_004.npz"
    np.savez(path, chunks=np.array([{"payload": 1}], dtype=object))  # numpy pickles object arrays
    with pytest.raises(UnsafeFileError, match="object array"):
        load_npz(path)


def test_raw_pickle_file_is_refused(tmp_path):
    path = tmp_path / "length_004.npz"
    path.write_bytes(pickle.dumps({"chunks": [1, 2, 3]}))
    with pytest.raises(UnsafeFileError, match="pickle"):
        load_npz(path)


def test_torch_save_style_archive_is_refused(tmp_path):
    path = tmp_path / "embeddings.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"x": 1}))
    with pytest.raises(UnsafeFileError, match="data.pkl"):
        load_npz(path)


def test_canonical_json_is_fixed():
    assert canonical_json({"b": [1, 2.5, -0.0], "a": "é", "c": None, "d": True}) == (
        '{"a":"é","b":[1,2.5,0],"c":null,"d":true}'
    )
    assert canonical_json(0.1) == "0.10000000000000001"
    assert canonical_json({"x": 1.0}) == canonical_json({"x": 1.0})
    with pytest.raises(ValueError, match="NaN"):
        canonical_json(float("nan"))


def test_content_hash_ignores_key_order_and_the_integrity_block():
    sealed = seal(RESULTS)
    reordered = dict(reversed(list(sealed.items())))
    assert check(reordered) == []
    assert content_hash(RESULTS) == sealed["integrity"]["content_hash"]
    assert sealed["integrity"]["signature"] is None


def test_tampering_with_one_number_fails_the_checksum():
    sealed = seal(RESULTS)
    sealed["lengths"]["4"]["scores"][1] = 14.691357
    problems = check(sealed)
    assert len(problems) == 1 and "content hash mismatch" in problems[0]


def test_hmac_signature_detects_a_recomputed_hash(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text("0123456789abcdef0123456789abcdef\n")
    key = read_key(key_file)
    sealed = seal(RESULTS, key)
    assert check(sealed, key) == []
    # A forger edits a number and recomputes the unkeyed hash: the hash check passes,
    # the signature check does not.
    forged = dict(sealed)
    forged["summary"] = {**sealed["summary"], "mean_score": 99.0}
    forged["integrity"] = {**sealed["integrity"], "content_hash": content_hash(forged)}
    assert check(forged) == []
    assert any("signature mismatch" in p for p in check(forged, key))
    assert any("signature mismatch" in p for p in check(sealed, b"another-key-0123456789"))
    assert any("no HMAC" in p for p in check(seal(RESULTS), key))


def test_key_files_are_checked(tmp_path):
    with pytest.raises(FileNotFoundError, match="secrets.token_hex"):
        read_key(tmp_path / "missing")
    (tmp_path / "short").write_text("abc")
    with pytest.raises(ValueError, match="at least 16"):
        read_key(tmp_path / "short")
