"""fewshot.cpu_env: CPU and core detection, the never-override and opt-out rules, and that training
with the defaults runs multithreaded and gives the numbers Paddle's own defaults give."""

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from fewshot import cpu_env
from fewshot.cpu_env import (
    CpuInfo,
    apply_cpu_defaults,
    cgroup_cpu_limit,
    default_threads,
    environ_for_child,
    read_cpu_info,
    usable_cores,
)

ROOT = Path(__file__).resolve().parents[1]
INTEL = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel name\t: Intel(R) Xeon(R) Processor\n\nprocessor\t: 1\n"
AMD = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13 64-Core Processor\n"
PROBS_TOLERANCE = 1e-5
"""Largest difference allowed between probabilities trained with the defaults and with Paddle's.
Measured: 0 on the tiny model (its matrices are too small for MKL to split across threads)."""


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """Fake /proc/cpuinfo and cgroup files under tmp_path and a 4-core affinity mask; returns a writer."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)

    def write(cpuinfo=INTEL, cgroup="0::/\n", files=None):
        (tmp_path / "cpuinfo").write_text(cpuinfo, encoding="utf-8")
        (tmp_path / "self-cgroup").write_text(cgroup, encoding="utf-8")
        for name, text in (files or {}).items():
            path = tmp_path / "cg" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        (tmp_path / "cg").mkdir(exist_ok=True)
        return dict(cpuinfo=tmp_path / "cpuinfo", cgroup_root=tmp_path / "cg", self_cgroup=tmp_path / "self-cgroup")

    return write


def test_vendor_and_model_come_from_the_first_processor_block(tmp_path):
    (tmp_path / "cpuinfo").write_text(INTEL, encoding="utf-8")
    assert read_cpu_info(tmp_path / "cpuinfo") == CpuInfo("GenuineIntel", "Intel(R) Xeon(R) Processor")
    (tmp_path / "cpuinfo").write_text(AMD, encoding="utf-8")
    info = read_cpu_info(tmp_path / "cpuinfo")
    assert info.vendor == "AuthenticAMD" and info.is_amd and info.model.startswith("AMD EPYC")


def test_missing_cpuinfo_falls_back_to_platform(tmp_path, monkeypatch):
    monkeypatch.setattr(cpu_env.platform, "processor", lambda: "Intel64 Family 6 Model 85 Stepping 7, GenuineIntel")
    info = read_cpu_info(tmp_path / "absent")
    assert info == CpuInfo("GenuineIntel", "Intel64 Family 6 Model 85 Stepping 7, GenuineIntel")


@pytest.mark.parametrize(
    "cgroup, files, expected",
    [
        ("0::/\n", {"cpu.max": "150000 100000\n"}, 1.5),
        ("0::/\n", {"cpu.max": "max 100000\n"}, None),
        ("0::/job/step\n", {"cpu.max": "400000 100000", "job/cpu.max": "200000 100000", "job/step/cpu.max": "max 100000"}, 2.0),
        ("4:cpu,cpuacct:/\n", {"cpu,cpuacct/cpu.cfs_quota_us": "250000", "cpu,cpuacct/cpu.cfs_period_us": "100000"}, 2.5),
        ("1:cpu:/\n", {"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}, None),
        ("0::/\n", {}, None),
    ],
    ids=["v2", "v2-unlimited", "v2-parent-is-tighter", "v1", "v1-unlimited", "no-files"],
)
def test_cgroup_quota_in_cpus(machine, cgroup, files, expected):
    paths = machine(cgroup=cgroup, files=files)
    assert cgroup_cpu_limit(paths["cgroup_root"], paths["self_cgroup"]) == expected


@pytest.mark.parametrize(
    "quota, cores", [("max 100000", 4), ("250000 100000", 2), ("800000 100000", 4), ("50000 100000", 1)],
)
def test_usable_cores_are_the_affinity_capped_by_the_quota_rounded_down_at_least_one(machine, quota, cores):
    paths = machine(files={"cpu.max": quota})
    assert usable_cores(paths["cgroup_root"], paths["self_cgroup"]) == cores


def test_runtime_threads_come_from_the_same_function():
    from fewshot.runtime import predictor

    assert predictor.usable_cores is usable_cores


def test_defaults_set_threads_to_usable_cores_and_no_mkl_variable_on_intel(machine):
    env = {}
    result = apply_cpu_defaults(env, modules={}, **machine(files={"cpu.max": "300000 100000"}))
    assert env == {"OMP_NUM_THREADS": "3"}
    assert result.usable_cores == 3 and result.set_by_fewshot() == ["OMP_NUM_THREADS"]
    assert result.describe() == (
        "Intel(R) Xeon(R) Processor (GenuineIntel), 3 usable cores; "
        "OMP_NUM_THREADS=3 (fewshot), MKL_DEBUG_CPU_TYPE unset (not AMD)"
    )


def test_amd_gets_the_mkl_avx2_code_path(machine):
    env = {}
    apply_cpu_defaults(env, modules={}, **machine(cpuinfo=AMD))
    assert env == {"OMP_NUM_THREADS": "4", "MKL_DEBUG_CPU_TYPE": "5"}


def test_a_users_values_are_never_changed(machine):
    env = {"OMP_NUM_THREADS": "1", "MKL_DEBUG_CPU_TYPE": "4"}
    result = apply_cpu_defaults(env, modules={}, **machine(cpuinfo=AMD))
    assert env == {"OMP_NUM_THREADS": "1", "MKL_DEBUG_CPU_TYPE": "4"}
    assert [(s.value, s.source) for s in result.settings] == [("1", "user"), ("4", "user")]


@pytest.mark.parametrize("switch", ["0", "false", "OFF", "no"])
def test_opt_out_sets_nothing(machine, switch):
    env = {"FEWSHOT_CPU_DEFAULTS": switch}
    result = apply_cpu_defaults(env, modules={}, **machine(cpuinfo=AMD))
    assert env == {"FEWSHOT_CPU_DEFAULTS": switch}
    assert {s.source for s in result.settings} == {"opted out"}


def test_threads_are_shared_among_a_paddle_launchers_local_processes():
    assert default_threads(4, {"PADDLE_LOCAL_SIZE": "2"}) == 2
    assert default_threads(2, {"PADDLE_LOCAL_SIZE": "4"}) == 1
    assert default_threads(4, {"PADDLE_LOCAL_SIZE": "x"}) == 4


def test_paddle_imported_first_sets_nothing_and_says_so_once_in_one_line(machine, monkeypatch):
    monkeypatch.setattr(cpu_env, "_WARNED", False)
    paths = machine(cpuinfo=AMD)
    env = {"OMP_NUM_THREADS": "1"}  # what importing Paddle leaves behind
    with pytest.warns(RuntimeWarning) as caught:
        apply_cpu_defaults(env, modules={"paddle": object()}, **paths)
    message = str(caught[0].message)
    assert "\n" not in message and "OMP_NUM_THREADS=4 MKL_DEBUG_CPU_TYPE=5 before importing paddle" in message
    assert env == {"OMP_NUM_THREADS": "1"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = apply_cpu_defaults(env, modules={"paddle": object()}, **paths)
    assert [s.source for s in result.settings] == ["user", "paddle imported first"]


def test_paddle_first_is_silent_when_the_user_already_chose_threads(machine, monkeypatch):
    monkeypatch.setattr(cpu_env, "_WARNED", False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        apply_cpu_defaults({"OMP_NUM_THREADS": "2"}, modules={"paddle": object()}, **machine())


def test_child_environment_drops_what_fewshot_set(monkeypatch):
    applied = cpu_env.CpuDefaults(
        CpuInfo("GenuineIntel", "x"), 2,
        (cpu_env.Setting("OMP_NUM_THREADS", "2", "fewshot"), cpu_env.Setting("MKL_DEBUG_CPU_TYPE", "4", "user")),
    )
    monkeypatch.setattr(cpu_env, "_APPLIED", applied)
    base = {"PATH": "/bin", "OMP_NUM_THREADS": "2", "MKL_DEBUG_CPU_TYPE": "4", "FEWSHOT_CPU_DEFAULTS": "0"}
    assert environ_for_child(True, base) == {"PATH": "/bin", "MKL_DEBUG_CPU_TYPE": "4"}
    assert environ_for_child(False, base) == {"PATH": "/bin", "MKL_DEBUG_CPU_TYPE": "4", "FEWSHOT_CPU_DEFAULTS": "0"}


def test_importing_fewshot_sets_the_environment_without_importing_paddle():
    code = (
        "import os, sys, fewshot; from fewshot.cpu_env import apply_once, usable_cores; "
        "assert 'paddle' not in sys.modules; "
        "assert os.environ['OMP_NUM_THREADS'] == str(usable_cores()), os.environ['OMP_NUM_THREADS']; "
        "print(apply_once().describe())"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "FEWSHOT_CPU_DEFAULTS", "PADDLE_LOCAL_SIZE")}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert "OMP_NUM_THREADS=" in out and "(fewshot)" in out


CHILD = r"""
import ctypes, json, os, sys
from fewshot.classifier import PromptClassifier
from fewshot.testing import make_separable_task

def runtime_threads(library, getter):
    # the thread count a loaded runtime library reports, read from it directly
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if library in line}
    return int(getattr(ctypes.CDLL(paths.pop()), getter)()) if paths else None

train, test, words = make_separable_task(n_per_class=8, seed=0)
clf = PromptClassifier(sys.argv[1], labels=words, template="{'text': 'text_a'}这句话的类别是{'mask'}{'mask'}",
                       max_seq_length=32, seed=0)
clf.fit(train, max_steps=4, learning_rate=5e-3, per_device_train_batch_size=8, seed=0,
        disable_tqdm=True, logging_steps=1000, evaluation_strategy="no", report_to=[])
probs = clf.predict_proba(test)
print(json.dumps({"omp_env": os.environ.get("OMP_NUM_THREADS"), "mkl": runtime_threads("libmklml", "MKL_Get_Max_Threads"),
                  "omp": runtime_threads("libiomp5", "omp_get_max_threads"), "probs": probs.tolist()}))
"""


def test_training_with_the_defaults_runs_multithreaded_and_matches_paddles_defaults(tiny_model_dir):
    if not sys.platform.startswith("linux"):
        pytest.skip("reads the runtime libraries' thread counts through /proc/self/maps")
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "FEWSHOT_CPU_DEFAULTS", "PADDLE_LOCAL_SIZE")}
    base["PYTHONPATH"] = str(ROOT)
    children = {
        name: subprocess.Popen([sys.executable, "-c", CHILD, tiny_model_dir], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        for name, env in (("defaults", base), ("paddle", {**base, "FEWSHOT_CPU_DEFAULTS": "0"}))
    }
    results = {}
    for name, child in children.items():
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err[-2000:]
        results[name] = json.loads(out.strip().splitlines()[-1])
    cores = str(usable_cores())
    assert results["defaults"]["omp_env"] == cores and results["paddle"]["omp_env"] == "1"
    for name, threads in (("defaults", int(cores)), ("paddle", 1)):
        assert results[name]["mkl"] in (None, threads) and results[name]["omp"] in (None, threads)
    assert results["defaults"]["mkl"] is not None or results["defaults"]["omp"] is not None
    np.testing.assert_allclose(results["defaults"]["probs"], results["paddle"]["probs"], rtol=0, atol=PROBS_TOLERANCE)
