import pytest

from mvface.bench.machine import cpu_model, describe_machine, machine_info, usable_cpus


def test_machine_info_names_cpu_threads_and_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    info = machine_info()
    assert info.cpu == cpu_model() and info.cpu
    assert info.cpus == usable_cpus() >= 1
    assert info.thread_env["OMP_NUM_THREADS"] == "1"
    assert "python" in info.versions
    line = describe_machine()
    assert info.cpu in line and "OMP_NUM_THREADS=1" in line and "usable CPUs" in line
