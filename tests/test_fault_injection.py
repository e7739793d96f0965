"""SIGKILL at random moments, mid-save and mid-resave, then resume: the final weights equal an uninterrupted
run's, bit for bit (scripts/fault_injection.py; the 24-kill campaign is in docs/reliability.md)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))


@pytest.mark.slow
def test_kill_9_at_random_moments_then_resume_is_exact(tmp_path, tiny_text_dir):
    from fault_injection import campaign

    s = campaign(kills=3, steps=120, every=10, seed=1, work=tmp_path, text=str(tiny_text_dir))
    assert s["kills"] == 3 and s["by_mode"]["random"] == 1 and s["by_mode"]["mid-save"] >= 1
    assert s["mid_save_kills_with_a_temporary_on_disk"] >= 1  # the kill did land inside a save
    assert s["unloadable_checkpoints_met"] == 0 and s["leftovers_after_finish"] == []
    assert s["most_steps_lost_by_a_kill"] <= 10
    assert s["equal"], s["max_abs_weight_difference"]
