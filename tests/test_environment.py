"""Conda and pip set up the same kit: environment.yml and requirements.txt carry the same pins,
the pins admit the torch Colab ships, and the environment running these tests satisfies them."""
import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import helpers

REPO = Path(__file__).resolve().parent.parent


def _normal(line: str) -> str:
    req = Requirement(line)
    return f"{canonicalize_name(req.name)}{','.join(sorted(str(s) for s in req.specifier))}"


def pip_requirements() -> dict:
    """requirements.txt as {canonical name: Requirement}."""
    lines = [line.split("#")[0].strip() for line in (REPO / "requirements.txt").read_text().splitlines()]
    reqs = [Requirement(line) for line in lines if line]
    return {canonicalize_name(r.name): r for r in reqs}


def conda_environment() -> dict:
    return yaml.safe_load((REPO / "environment.yml").read_text())


def conda_pip_section() -> list:
    pips = [d["pip"] for d in conda_environment()["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pips) == 1, "environment.yml should have one pip: section"
    return pips[0]


def test_conda_and_pip_carry_the_same_pins():
    pip = sorted(_normal(str(r)) for r in pip_requirements().values())
    conda = sorted(_normal(line) for line in conda_pip_section())
    assert conda == pip, (f"only in environment.yml: {sorted(set(conda) - set(pip))}; "
                          f"only in requirements.txt: {sorted(set(pip) - set(conda))}")


def test_conda_environment_is_complete():
    env = conda_environment()
    assert env["name"] and "conda-forge" in env["channels"]
    plain = [d for d in env["dependencies"] if isinstance(d, str)]
    assert "pip" in plain
    python = [d for d in plain if re.fullmatch(r"python\s*[=<>].*", d)]
    assert python == ["python=3.11"], "the kit is tested on Python 3.11 (kit.sh prefers python3.11)"


def test_every_requirement_is_pinned_or_bounded():
    loose = [name for name, r in pip_requirements().items() if not r.specifier]
    assert not loose, f"no version given for {loose}"


def test_torch_pin_admits_colabs_torch_and_the_one_kit_sh_installs():
    torch = pip_requirements()["torch"].specifier
    assert all(s.operator in (">=", ">", "!=") for s in torch), \
        "no upper bound or exact pin on torch: Colab ships a recent torch and the notebooks must not reinstall it"
    kit_sh = re.search(r'"torch==([\d.]+)"', (REPO / "kit.sh").read_text()).group(1)
    for v in ("2.4.0", "2.6.0", "2.8.0", "2.9.1", kit_sh):
        assert torch.contains(v), f"torch {v} is not admitted by torch{torch}"


def test_the_colab_setup_installs_with_the_same_pins():
    pins = [pin for _, pin in helpers.COLAB_PACKAGES]
    assert pins, "helpers.colab_setup names the packages it may install, pinned"
    reqs = {_normal(str(r)) for r in pip_requirements().values()}
    assert {_normal(p) for p in pins} <= reqs
    assert "torch" not in {canonicalize_name(Requirement(p).name) for p in pins}


def test_this_environment_satisfies_the_requirements():
    wrong = []
    for name, req in pip_requirements().items():
        try:
            have = version(req.name)
        except PackageNotFoundError:
            wrong.append(f"{req} (not installed)")
            continue
        if not req.specifier.contains(have, prereleases=True):
            wrong.append(f"{req} (found {have})")
    assert not wrong, f"installed packages miss the pins: {wrong}; run: bash kit.sh setup"
