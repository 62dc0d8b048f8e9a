"""The static leaderboard in headless Chromium: sorting, the latency toggle, flags, the Anatomy
Laboratory's row stepping, and a screenshot of each view."""

from __future__ import annotations

from pathlib import Path

import pytest

from vbert.finesse.leaderboard import build_site


@pytest.fixture(scope="module")
def site(finesse_run, tampered, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    build_site([*finesse_run.results.values(), tampered], out, raw_dirs=[finesse_run.raw])
    return out / "index.html"


def open_view(browser, site: Path, view: str):
    page = browser.page
    page.goto(site.as_uri())
    page.click(f"#tab-{view}")
    return page


def names(page) -> list[str]:
    return page.eval_on_selector_all("#board tbody tr .model-name", "els => els.map(e => e.textContent)")


def scores(page) -> list[float]:
    texts = page.eval_on_selector_all("#board tbody tr td.score", "els => els.map(e => e.textContent)")
    return [float(t.rstrip("*")) for t in texts]


def test_table_sorts(browser, site, finesse_run, screenshot):
    page = open_view(browser, site, "board")
    overall = {name: finesse_run.load(name)["summary"]["mean_score"] for name in finesse_run.results}
    by_score = sorted(overall, key=lambda n: -overall[n])
    assert names(page) == [*by_score, "decay-edited"]  # flagged result last, whatever its score
    header = page.locator('#board th:has(button[data-key="overall"])')
    assert header.get_attribute("aria-sort") == "descending"
    page.click('button[data-key="overall"]')
    assert header.get_attribute("aria-sort") == "ascending"
    assert names(page) == [*reversed(by_score), "decay-edited"]
    verified = scores(page)[:-1]
    assert verified == sorted(verified)
    page.focus('button[data-key="label"]')
    page.keyboard.press("Enter")  # sorting works from the keyboard too
    assert names(page)[:-1] == sorted(by_score)
    page.click('button[data-key="latency_merge_ms"]')
    merge = {
        name: finesse_run.load(name)["summary"]["median_latency_merge_ms"] for name in finesse_run.results
    }
    assert names(page)[:-1] == sorted(merge, key=lambda n: merge[n])
    page.click('button[data-key="overall"]')
    screenshot(page, "leaderboard")
    assert browser.errors == []


def test_flagged_result_shows_its_flag(browser, site):
    page = open_view(browser, site, "board")
    row = page.locator("#board tbody tr", has_text="decay-edited")
    assert "flagged" in row.get_attribute("class")
    assert row.locator(".flag").inner_text().strip() == "⚠ unverified"
    assert row.locator("td.rank").inner_text() == "–"
    assert "does not verify" in row.locator("td.hash").inner_text()
    assert "decay-edited" in page.locator("#warnings").inner_text()
    page.uncheck("#show-flagged")
    assert "decay-edited" not in names(page)
    page.check("#show-flagged")
    assert "decay-edited" in names(page)
    assert browser.errors == []


def test_latency_toggle_switches_the_axis(browser, site, finesse_run, screenshot):
    page = open_view(browser, site, "charts")
    page.wait_for_function("window.FinesseLeaderboard && window.FinesseLeaderboard.scatter")

    def state():
        return page.evaluate(
            """() => { const lb = window.FinesseLeaderboard;
                 return { mode: document.getElementById('scatter').dataset.latency,
                          label: lb.scatter.axes[0].label, points: lb.scatterPoints }; }"""
        )

    labels = {m["id"]: m["name"] for m in page.evaluate("window.FinesseLeaderboard.data.models")}
    full = state()
    assert full["mode"] == "full" and full["label"].startswith("Full time")
    for point in full["points"]:
        name = labels[point["id"]]
        source = finesse_run.load(name if name in finesse_run.results else "decay")
        assert point["x"] == pytest.approx(source["summary"]["median_latency_full_ms"])
    page.check('input[name="latency"][value="merge_only"]')
    merge = state()
    assert merge["mode"] == "merge_only" and merge["label"].startswith("Merging only")
    for point in merge["points"]:
        name = labels[point["id"]]
        source = finesse_run.load(name if name in finesse_run.results else "decay")
        assert point["x"] == pytest.approx(source["summary"]["median_latency_merge_ms"])
    assert [p["x"] for p in merge["points"]] != [p["x"] for p in full["points"]]

    # Hover details: move the mouse onto the "mean" point.
    x, y = page.evaluate(
        """() => { const lb = window.FinesseLeaderboard; const u = lb.scatter;
             const id = lb.data.models.find(m => m.name === 'mean').id;
             const p = lb.scatterPoints.find(q => q.id === id);
             const r = u.over.getBoundingClientRect();
             return [r.left + u.valToPos(p.x, 'x'), r.top + u.valToPos(p.y, 'y')]; }"""
    )
    page.mouse.move(x, y)
    tooltip = page.locator("#scatter .tooltip")
    tooltip.wait_for(state="visible")
    assert tooltip.inner_text().startswith("mean")
    assert "merge only" in tooltip.inner_text()
    screenshot(page, "quality-vs-latency")
    assert browser.errors == []


def test_per_length_curves_follow_the_selection(browser, site):
    page = open_view(browser, site, "charts")
    page.wait_for_function("window.FinesseLeaderboard && window.FinesseLeaderboard.curves")
    shown = page.get_attribute("#curves", "data-models").split(",")
    assert len(shown) == 5
    first = page.locator("#curve-models input").first
    model_id = first.get_attribute("value")
    first.uncheck()
    assert model_id not in page.get_attribute("#curves", "data-models").split(",")
    series = page.evaluate("window.FinesseLeaderboard.curves.series.length")
    assert series == 1 + 4
    lengths = page.evaluate("window.FinesseLeaderboard.curves.data[0]")
    assert lengths == list(range(4, 11))
    assert browser.errors == []


def test_anatomy_view_changes_with_the_row(browser, site, finesse_run, screenshot):
    page = open_view(browser, site, "anatomy")
    readout = page.locator('[data-testid="readout-td"]')
    readout.wait_for()
    page.wait_for_function("document.querySelector('[data-testid=\"readout-td\"]').textContent.length > 0")
    td_box = page.locator('.matrix-box[data-view="td"]')
    assert td_box.get_attribute("data-selected") == "1"
    first_text = readout.inner_text()
    page.click('.anatomy-panel[data-view="td"] button[aria-label="Next synthesis"]')
    assert td_box.get_attribute("data-selected") == "2"
    assert readout.inner_text() != first_text and "s_2" in readout.inner_text()
    assert page.locator('.anatomy-panel[data-view="td"] tr.selected').get_attribute("data-row") == "2"
    td_box.focus()
    page.keyboard.press("ArrowUp")
    assert td_box.get_attribute("data-selected") == "1"
    page.keyboard.press("End")
    length = int(page.input_value("#anatomy-length"))
    assert td_box.get_attribute("data-selected") == str(length - 2)  # last scored Top-Down row
    bu_box = page.locator('.matrix-box[data-view="bu"]')
    bu_box.focus()
    page.keyboard.press("End")
    assert bu_box.get_attribute("data-selected") == str(length - 1)  # Bottom-Up scores the last anchor

    # The memory/noise split follows the row: in row i of Top-Down, memory is c_0..c_i.
    page.select_option("#anatomy-length", "7")
    td_box.focus()
    page.keyboard.press("Home")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    tiers = page.eval_on_selector_all(
        '.anatomy-panel[data-view="td"] tr.tiers td:not(.gapcol)', "els => els.map(e => e.classList[0])"
    )
    assert tiers == ["memory"] * 4 + ["noise"] * 3

    # Best / worst shortcut picks the sample with the highest / lowest score of that length.
    scores = finesse_run.load("decay")["lengths"]["7"]["scores"]
    page.select_option("#anatomy-model", label="decay")
    page.wait_for_function("document.getElementById('anatomy-sample').options.length > 0")
    page.click("#anatomy-best")
    assert int(page.input_value("#anatomy-sample")) == scores.index(max(scores))
    best_summary = page.locator('[data-testid="sample-summary"]').inner_text()
    page.click("#anatomy-worst")
    assert int(page.input_value("#anatomy-sample")) == scores.index(min(scores))
    assert page.locator('[data-testid="sample-summary"]').inner_text() != best_summary
    screenshot(page, "anatomy")
    assert browser.errors == []


def test_page_makes_no_network_requests(browser, site):
    page = open_view(browser, site, "anatomy")
    page.locator('[data-testid="readout-td"]').wait_for()
    page.click("#tab-charts")
    page.wait_for_function("window.FinesseLeaderboard.scatter")
    assert browser.requests, "the page loads its anatomy files"
    assert all(url.startswith("file://") for url in browser.requests), browser.requests
    assert browser.errors == []
