"""oncoshot.runtime.local_snakemake_env: local Snakemake runs must not wait for a SLURM controller."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from oncoshot.runtime import NO_CONTROLLER_SLURM_CONF, local_snakemake_env


def _fake_sinfo(folder) -> str:
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    sinfo = bin_dir / "sinfo"
    sinfo.write_text("#!/bin/sh\nexit 0\n")
    sinfo.chmod(0o755)
    return str(bin_dir)


def test_without_a_slurm_client_the_environment_is_unchanged(tmp_path):
    env = {"PATH": str(tmp_path), "HOME": "/home/x", "SLURM_CONF": "/etc/real.conf"}
    assert local_snakemake_env(env, folder=tmp_path / "conf") == env
    assert not (tmp_path / "conf").exists()


def test_with_a_slurm_client_slurm_conf_points_at_a_no_controller_file(tmp_path):
    env = {"PATH": _fake_sinfo(tmp_path), "KEEP": "1"}
    out = local_snakemake_env(env, folder=tmp_path / "conf")
    conf = tmp_path / "conf" / "no-controller-slurm.conf"
    assert out["SLURM_CONF"] == str(conf)
    assert out["KEEP"] == "1" and "SLURM_CONF" not in env  # a copy; the caller's dict is untouched
    assert conf.read_text() == NO_CONTROLLER_SLURM_CONF
    # a damaged file is rewritten, an intact one reused
    conf.write_text("garbage")
    local_snakemake_env(env, folder=tmp_path / "conf")
    assert conf.read_text() == NO_CONTROLLER_SLURM_CONF
    assert sorted(p.name for p in (tmp_path / "conf").iterdir()) == ["no-controller-slurm.conf"]


@pytest.mark.skipif(shutil.which("scontrol") is None, reason="no SLURM client (scontrol) installed")
def test_scontrol_refuses_at_once_with_the_no_controller_conf(tmp_path):
    """What the SLURM executor plugin runs at every Snakemake start: with this configuration it
    fails (connect failure) instead of waiting for a controller; the timeout only guards a hang."""
    env = local_snakemake_env(dict(os.environ), folder=tmp_path)
    proc = subprocess.run(["scontrol", "show", "config"], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    assert "Unable to contact slurm controller" in proc.stderr
