"""Building the static leaderboard site (no browser): data, integrity flags, anatomy payloads."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from vbert.finesse.integrity import seal
from vbert.finesse.leaderboard import (
    HASH_INVALID,
    HASH_SIGNED,
    HASH_VALID,
    LeaderboardError,
    build_site,
    hash_status,
    load_results,
)
from vbert.finesse.leaderboard.anatomy import match_raw
from vbert.finesse.leaderboard.codec import decode_matrix, encode_matrix
from vbert.finesse.metrics.rss import (
    bottom_up,
    gaps_from_matrix,
    sample_anatomy,
    sample_score,
    similarity_matrix,
    top_down,
)
from vbert.finesse.raw import RawRun, find_runs

KEY = b"0123456789abcdef0123456789abcdef"


def site_data(index: Path) -> dict:
    html = index.read_text(encoding="utf-8")
    match = re.search(r'<script type="application/json" id="finesse-data">(.*?)</script>', html, re.S)
    assert match, "the page embeds its data"
    return json.loads(match.group(1))


def anatomy_data(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    return json.loads(text.split("] = ", 1)[1].rstrip().rstrip(";"))


def test_hash_status_valid_invalid_signed(finesse_run):
    results = finesse_run.load("mean")
    assert hash_status(results).status == HASH_VALID
    edited = json.loads(json.dumps(results))
    edited["lengths"]["4"]["scores"][0] += 0.5
    check = hash_status(edited)
    assert check.status == HASH_INVALID and "content hash mismatch" in check.detail[0]
    signed = seal({k: v for k, v in results.items() if k != "integrity"}, KEY)
    assert hash_status(signed, KEY).status == HASH_SIGNED
    assert hash_status(signed).status == HASH_VALID  # no key: signature not checked, hash fine
    assert hash_status(signed, b"another key of 32 bytes........").status == HASH_INVALID
    unsigned_with_key = hash_status(results, KEY)
    assert unsigned_with_key.status == HASH_VALID and "not signed" in unsigned_with_key.detail[0]


def test_site_table_data_matches_results(finesse_run, tmp_path):
    report = build_site(list(finesse_run.results.values()), tmp_path / "site")
    data = site_data(report.index)
    models = {m["name"]: m for m in data["models"]}
    assert set(models) == {"decay", "mean", "truncation", "native"}
    mean = finesse_run.load("mean")
    entry = models["mean"]
    assert entry["overall"] == pytest.approx(mean["summary"]["mean_score"])
    assert entry["latency_full_ms"] == pytest.approx(mean["summary"]["median_latency_full_ms"])
    assert entry["latency_merge_ms"] == pytest.approx(mean["summary"]["median_latency_merge_ms"])
    assert entry["lengths_evaluated"] == list(range(4, 11))
    band = entry["bands"]["4–8"]
    expected = np.mean([s for n in range(4, 9) for s in mean["lengths"][str(n)]["scores"]])
    assert band["score"] == pytest.approx(expected) and band["evaluated"] == [4, 5, 6, 7, 8]
    assert entry["bands"]["9–16"]["evaluated"] == [9, 10]
    assert entry["bands"]["17–32"] is None and entry["bands"]["33–64"] is None
    native = models["native"]
    assert native["lengths_not_evaluated"], "the 40-token window cannot hold lengths 7–10"
    assert native["bands"]["9–16"]["score"] is None and native["bands"]["9–16"]["missing"] == [9, 10]
    ranks = sorted((m["rank"], -m["overall"]) for m in data["models"])
    assert [r for r, _ in ranks] == [1, 2, 3, 4] and [o for _, o in ranks] == sorted(o for _, o in ranks)
    assert all(m["hash"]["status"] == HASH_VALID for m in data["models"])
    assert data["warnings"] == []


def test_flagged_result_is_shown_but_not_ranked(finesse_run, tampered, tmp_path):
    report = build_site([*finesse_run.results.values(), tampered], tmp_path / "site")
    data = site_data(report.index)
    edited = next(m for m in data["models"] if m["name"] == "decay-edited")
    assert edited["hash"]["status"] == HASH_INVALID
    assert edited["rank"] is None
    assert edited["overall"] == 999.0  # shown as written, flagged, not silently dropped or fixed
    assert sorted(m["rank"] for m in data["models"] if m["rank"]) == [1, 2, 3, 4]
    assert report.flagged == ["decay-edited"]
    assert any("do not verify" in w and "decay-edited" in w for w in data["warnings"])


def test_signed_results_with_key(finesse_run, tmp_path):
    results = finesse_run.load("mean")
    signed = seal({k: v for k, v in results.items() if k != "integrity"}, KEY)
    path = tmp_path / "signed.json"
    path.write_text(json.dumps(signed), encoding="utf-8")
    data = site_data(build_site([path], tmp_path / "site", key=KEY).index)
    assert data["models"][0]["hash"]["status"] == HASH_SIGNED


def test_incomparable_results_are_warned_about(finesse_run, tmp_path):
    results = finesse_run.load("mean")
    other = seal({**{k: v for k, v in results.items() if k != "integrity"}, "score_version": "sum"})
    path = tmp_path / "sum.json"
    path.write_text(json.dumps(other), encoding="utf-8")
    data = site_data(build_site([finesse_run.results["decay"], path], tmp_path / "site").index)
    assert any("not directly comparable" in w and "score_version" in w for w in data["warnings"])


def test_anatomy_payload_matches_scoring(finesse_run, tmp_path):
    report = build_site([finesse_run.results["decay"]], tmp_path / "site", raw_dirs=[finesse_run.raw])
    data = site_data(report.index)
    entry = data["models"][0]
    assert entry["anatomy"] == "anatomy/m0.js"
    payload = anatomy_data(tmp_path / "site" / entry["anatomy"])
    run = RawRun.open(finesse_run.raw / "decay")
    results = finesse_run.load("decay")
    for length in ("4", "7", "10"):
        arrays = run.arrays(int(length))
        item = payload["lengths"][length]
        assert item["samples_total"] == 3
        scores = results["lengths"][length]["scores"]
        assert item["best"] == int(np.argmax(scores)) and item["worst"] == int(np.argmin(scores))
        for sample in item["samples"]:
            k = sample["index"]
            chunks, synths = arrays["chunks"][k], arrays["synths"][k]
            sim = decode_matrix(sample["matrix"], int(length))
            np.testing.assert_allclose(sim, similarity_matrix(chunks, synths), atol=2e-5)
            assert sample["td"] == pytest.approx(top_down(chunks, synths), abs=1e-6)  # stored to 6 decimals
            assert sample["bu"] == pytest.approx(bottom_up(chunks, synths), abs=1e-6)
            assert sample["score"] == pytest.approx(scores[k], abs=1e-5)
            assert [r[0] for r in sample["td_rows"]] == list(range(1, int(length) - 1))
            assert [r[0] for r in sample["bu_rows"]] == list(range(1, int(length)))


def test_sample_anatomy_quartiles_by_hand():
    # T[i, j] = cos(s_i, c_j) for L = 4, values chosen so the quartiles are easy to check.
    sim = np.array(
        [
            [0.9, 0.1, 0.2, 0.3],
            [0.8, 0.6, 0.2, 0.4],
            [0.7, 0.5, 0.9, 0.1],
            [0.6, 0.4, 0.3, 0.8],
        ]
    )
    detail = sample_anatomy(sim, "q1q3", "balanced")
    # Row 1: memory {0.8, 0.6} Q1 = 0.65; noise {0.2, 0.4} Q3 = 0.35; gap 0.30.
    row, q_memory, q_noise, gap = detail["td_rows"][0]
    assert (row, q_memory, q_noise, gap) == (1, pytest.approx(0.65), pytest.approx(0.35), pytest.approx(0.30))
    # Anchor 3 (Bottom-Up): memory {T[3,3]} = 0.8; noise {T[0,3], T[1,3], T[2,3]} Q3 = 0.35.
    anchor, q_memory, q_noise, gap = detail["bu_rows"][-1]
    assert anchor == 3
    assert (q_memory, q_noise, gap) == (pytest.approx(0.8), pytest.approx(0.35), pytest.approx(0.45))
    assert detail["score"] == pytest.approx(sample_score(detail["td"], detail["bu"], "balanced"))
    medians = sample_anatomy(sim, "q2q2", "sum")
    assert medians["td_rows"][0][1:3] == [pytest.approx(0.7), pytest.approx(0.3)]


@pytest.mark.parametrize("formula", ["q1q3", "q2q2"])
def test_sample_anatomy_agrees_with_scoring(formula):
    rng = np.random.default_rng(11)
    for length in (3, 4, 5, 9, 33):
        for _ in range(5):
            sim = rng.uniform(-1, 1, size=(length, length))
            detail = sample_anatomy(sim, formula, "sum")
            gaps = gaps_from_matrix(sim, formula)
            assert [r[3] for r in detail["td_rows"]] == pytest.approx(list(gaps.td_gaps), abs=1e-12)
            assert [r[3] for r in detail["bu_rows"]] == pytest.approx(list(gaps.bu_gaps), abs=1e-12)
            assert detail["td"] == pytest.approx(gaps.td, abs=1e-12)
            assert detail["bu"] == pytest.approx(gaps.bu, abs=1e-12)
    with pytest.raises(ValueError, match="unknown formula"):
        sample_anatomy(np.eye(4), "q1q2", "sum")


def test_matrix_encoding_round_trip():
    rng = np.random.default_rng(0)
    sim = rng.uniform(-1, 1, size=(7, 7))
    sim[0, 0], sim[1, 1] = 1.0, -1.0
    np.testing.assert_allclose(decode_matrix(encode_matrix(sim), 7), sim, atol=1 / 32767)


def test_anatomy_samples_keep_best_and_worst(finesse_run, tmp_path):
    report = build_site(
        [finesse_run.results["mean"]], tmp_path / "site", raw_dirs=[finesse_run.raw], anatomy_samples=1
    )
    payload = anatomy_data(report.anatomy_files[0])
    for item in payload["lengths"].values():
        kept = [s["index"] for s in item["samples"]]
        assert item["best"] in kept and item["worst"] in kept and len(kept) <= 2


def test_raw_is_matched_by_file_hashes(finesse_run):
    runs = find_runs(finesse_run.raw)
    for name in ("decay", "mean", "native"):
        assert match_raw(finesse_run.load(name), runs).name == name
    other = finesse_run.load("mean")
    other["raw_files"] = {k: "0" * 64 for k in other["raw_files"]}
    assert match_raw(other, runs) is None


def test_runner_layout_finds_raw_without_flag(finesse_run, tmp_path):
    report = build_site(list(finesse_run.results.values()), tmp_path / "site")
    assert len(report.anatomy_files) == 4  # OUT/results/<name>/results.json beside OUT/raw/


def test_unmatched_raw_gives_warning(finesse_run, tmp_path):
    results = finesse_run.load("mean")
    results["raw_files"] = {k: "0" * 64 for k in results["raw_files"]}
    path = tmp_path / "r" / "results.json"
    path.parent.mkdir()
    path.write_text(
        json.dumps(seal({k: v for k, v in results.items() if k != "integrity"})), encoding="utf-8"
    )
    report = build_site([path], tmp_path / "site", raw_dirs=[finesse_run.raw])
    assert report.anatomy_files == []
    assert any("no raw folder matches" in w for w in report.warnings)


def test_page_is_self_contained_and_small(finesse_run, tmp_path):
    report = build_site(list(finesse_run.results.values()), tmp_path / "site")
    html = report.index.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "no external resources"
    assert "@@" not in html
    assert report.page_bytes < 200_000
    assert (tmp_path / "site" / "THIRD_PARTY_LICENSES.txt").read_text().startswith("uPlot")
    assert oct(report.index.stat().st_mode & 0o777) == "0o644"


def test_hostile_names_cannot_break_out_of_the_page(finesse_run, tmp_path):
    results = finesse_run.load("mean")
    results["competitor"]["name"] = "</script><script>alert(1)</script>"
    path = tmp_path / "hostile.json"
    path.write_text(
        json.dumps(seal({k: v for k, v in results.items() if k != "integrity"})), encoding="utf-8"
    )
    report = build_site([path], tmp_path / "site")
    html = report.index.read_text(encoding="utf-8")
    assert "<script>alert(1)" not in html
    assert site_data(report.index)["models"][0]["label"] == results["competitor"]["name"]


def test_stale_anatomy_files_are_removed(finesse_run, tmp_path):
    build_site(list(finesse_run.results.values()), tmp_path / "site")
    assert len(list((tmp_path / "site" / "anatomy").glob("m*.js"))) == 4
    build_site([finesse_run.results["mean"]], tmp_path / "site")
    assert sorted(p.name for p in (tmp_path / "site" / "anatomy").glob("m*.js")) == ["m0.js"]


def test_bad_inputs_have_clear_errors(tmp_path, finesse_run):
    with pytest.raises(LeaderboardError, match="at least one results.json"):
        build_site([], tmp_path / "site")
    not_results = tmp_path / "config.json"
    not_results.write_text('{"name": "x"}', encoding="utf-8")
    with pytest.raises(LeaderboardError, match="not a Finesse results file"):
        load_results(not_results)
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": ', encoding="utf-8")
    with pytest.raises(LeaderboardError, match="not valid JSON"):
        load_results(broken)
    with pytest.raises(LeaderboardError, match="does not exist"):
        load_results(tmp_path / "missing.json")
    with pytest.raises(LeaderboardError, match="--raw"):
        build_site([finesse_run.results["mean"]], tmp_path / "site", raw_dirs=[tmp_path / "nowhere"])
    with pytest.raises(LeaderboardError, match="anatomy_samples"):
        build_site([finesse_run.results["mean"]], tmp_path / "site", anatomy_samples=-1)


def test_srs_results_get_their_own_table(finesse_run, fakes, tmp_path):
    from vbert.finesse import run_benchmark

    embedder = fakes.WordEmbedder()
    config = {
        "name": "srs",
        "metric": "srs",
        "embedder": "default",
        "probes": {
            "file": str(tmp_path / "probes.parquet"),
            "source": {"kind": "files", "path": str(fakes.write_corpus(tmp_path / "corpus"))},
            "tokenizer": "default",
            "sequence_length": {"min": 4, "max": 5},
            "samples_per_length": 2,
            "token_per_sample": 6,
            "group_amount": 2,
            "document_reuse": "across_samples",
        },
        "competitors": [{"name": "mean", "kind": "mean"}],
        "runtime": {"batch_size": 8, "warmup": 0, "progress": False},
    }
    srs = run_benchmark(config, tmp_path / "srs", embedder=embedder, tokenizer=embedder)
    srs_file = srs.result_files["mean"]
    report = build_site([finesse_run.results["mean"], srs_file], tmp_path / "site")
    data = site_data(report.index)
    assert [m["label"] for m in data["models"]] == ["mean"]
    assert [m["label"] for m in data["srs"]] == ["mean"]  # its own table, so no "(2)" suffix
    entry = data["srs"][0]
    summary = json.loads(srs_file.read_text())["summary"]
    assert entry["overall"] == pytest.approx(summary["mean_score"]) and entry["pbi"] == pytest.approx(
        summary["pbi"]
    )
    assert entry["hash"]["status"] == HASH_VALID and entry["lengths_evaluated"] == [4, 5]
    assert len(report.anatomy_files) == 1  # matrices only for the rss run
