"""The `recsys models list` table, from registry metrics alone."""

from recsys.registry_table import format_table, run_summary

GATE = {"accepted": False, "metric": "ndcg@10", "challenger": 0.0041, "champion": 0.0071,
        "champion_version": "mf_als@2019-11-13", "reason": "ndcg@10 0.0041 is worse than live\nmf_als@2019-11-13's " * 5}


def test_a_rejected_version_shows_its_figure_the_live_one_popularity_and_one_line_of_reason():
    rows = [run_summary("mf_als@2019-11-14", "rejected", {"gate": GATE, "popularity_ndcg@10": 0.0023}),
            run_summary("rl_reinforce@2019-11-14", "failed",
                        {"last_failure": {"stage": "train", "error": "boom"}})]
    lines = format_table(rows, width=100)
    assert len(lines) == 3 and all(len(line) <= 100 for line in lines)
    assert lines[1].split()[:6] == ["mf_als@2019-11-14", "rejected", "ndcg@10", "0.0041", "0.0071", "0.0023"]
    assert lines[1].endswith("...") and "\n" not in lines[1]
    assert lines[2].split()[:6] == ["rl_reinforce@2019-11-14", "failed", "-", "-", "-", "-"]
    assert "failed at train: boom" in lines[2]
