"""The notebooks, executed top to bottom against a fresh lake, a real redis-server and a real worker.

The kernel is this interpreter (``sys.executable``, the repo's .venv under ``make test``), given
through a kernelspec written for the test, and it inherits the test's environment: the fixtures'
BULKIMPORT_HOME and REDIS_URL, and the tokens of the users the notebooks act as.
"""

from __future__ import annotations

import json
import os
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from bulkimport import registry
from tests.conftest import REPO, TOKENS

pytestmark = pytest.mark.e2e

NOTEBOOKS = REPO / "notebooks"
EXPECTED = ["01_explore_staged.ipynb", "02_production_over_time.ipynb", "03_import_from_a_notebook.ipynb"]
KERNEL = "bulkimport-tests"


@pytest.fixture
def kernel(home, tmp_path, monkeypatch) -> str:
    """A kernelspec that runs this very interpreter, found first through JUPYTER_PATH."""
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "bulkimport tests",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))  # no profile or startup files of the machine
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend draws the charts
    monkeypatch.setenv("BULKIMPORT_TOKEN", TOKENS["ana"])  # analyst of acme (tests/conftest.py)
    monkeypatch.setenv("BULKIMPORT_APPROVER_TOKEN", TOKENS["olga"])  # operator of every brand
    return KERNEL


def run(name: str, kernel: str) -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, kernel_name=kernel, timeout=600, resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    return nb


def images(nb: nbformat.NotebookNode) -> int:
    return sum("image/png" in out.get("data", {}) for cell in nb.cells for out in cell.get("outputs", []))


def text(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.append(out.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def test_the_notebooks_are_there_and_stored_without_outputs():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == EXPECTED
    for name in EXPECTED:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code, name
        assert all(c.outputs == [] and c.execution_count is None for c in code), f"{name} has outputs"


def test_explore_staged_submits_the_example_on_a_fresh_system_and_charts_its_rejects(worker, kernel):
    nb = run("01_explore_staged.ipynb", kernel)
    staged = registry.list_jobs(status="staged")
    assert len(staged) == 1 and (staged[0].rows_valid, staged[0].rows_rejected) == (7, 9)
    assert "No staged job yet: submitting" in text(nb)
    assert images(nb) >= 1


def test_explore_staged_opens_the_newest_staged_job_when_there_is_one(worker, kernel):
    run("03_import_from_a_notebook.ipynb", kernel)  # committed, so nothing is staged ...
    run("01_explore_staged.ipynb", kernel)  # ... and this one submits one
    newest = registry.list_jobs(status="staged")[0]
    nb = run("01_explore_staged.ipynb", kernel)
    assert f"job {newest.id}:" in text(nb) and "No staged job yet" not in text(nb)
    assert len(registry.list_jobs(status="staged")) == 1


def test_production_over_time_imports_twice_and_travels_back(worker, kernel):
    nb = run("02_production_over_time.ipynb", kernel)
    committed = registry.list_jobs(status="committed")
    assert len(committed) == 2
    assert images(nb) >= 3
    assert "price changed" in text(nb)


def test_import_from_a_notebook_submits_inspects_and_approves(worker, kernel):
    nb = run("03_import_from_a_notebook.ipynb", kernel)
    (job,) = registry.list_jobs()
    assert (job.status, job.created_by, job.approved_by, job.rows_inserted) == ("committed", "ana", "olga", 7)
    assert "committed: 7 inserted, 0 updated" in text(nb)
