"""A Tutor project in a temporary TUTOR_ROOT, with a stand-in `docker` on PATH
that records its arguments (and answers `compose ls` as Tutor expects)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
TUTOR = Path(sys.executable).with_name("tutor")

STAND_IN_DOCKER = textwrap.dedent(
    """\
    #!{python}
    import json, os, sys
    with open(os.environ["DOCKER_LOG"], "a") as log:
        log.write(json.dumps(sys.argv[1:]) + "\\n")
    if "ls" in sys.argv[1:] and "json" in sys.argv[1:]:
        print("[]")
    """
)


class Project:
    def __init__(self, root: Path, bin_dir: Path, extra_pythonpath: str = ""):
        self.root = root
        self.docker_log = root.parent / "docker.log"
        self.env = dict(os.environ)
        self.env.update(
            TUTOR_ROOT=str(root),
            TUTOR_PLUGINS_ROOT=str(root.parent / "plugins"),
            DOCKER_LOG=str(self.docker_log),
            PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        )
        if extra_pythonpath:
            self.env["PYTHONPATH"] = extra_pythonpath

    def tutor(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        ran = subprocess.run(
            [str(TUTOR), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and ran.returncode != 0:
            raise AssertionError(f"tutor {args} exited {ran.returncode}:\n{ran.stdout}\n{ran.stderr}")
        return ran

    def save(self, *settings: str) -> None:
        args = ["config", "save"]
        for setting in settings:
            args += ["--set", setting]
        self.tutor(*args)

    def config(self) -> dict:
        return yaml.safe_load((self.root / "config.yml").read_text())

    def read(self, relative: str) -> str:
        return (self.root / "env" / relative).read_text()

    def yaml(self, relative: str):
        return yaml.safe_load(self.read(relative))

    def yaml_documents(self, relative: str) -> list:
        return [d for d in yaml.safe_load_all(self.read(relative)) if d]

    def docker_calls(self) -> list:
        if not self.docker_log.exists():
            return []
        return [json.loads(line) for line in self.docker_log.read_text().splitlines()]

    def forget_docker_calls(self) -> None:
        self.docker_log.unlink(missing_ok=True)


@pytest.fixture
def make_project(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(STAND_IN_DOCKER.format(python=sys.executable))
    docker.chmod(0o755)

    def make(config_yml: str = "", extra_pythonpath: str = "") -> Project:
        root = tmp_path / "root"
        root.mkdir(exist_ok=True)
        if config_yml:
            (root / "config.yml").write_text(config_yml)
        return Project(root, bin_dir, extra_pythonpath)

    return make


@pytest.fixture
def project(make_project) -> Project:
    """webhookreceiver enabled, config saved."""
    project = make_project()
    project.tutor("plugins", "enable", "webhookreceiver")
    project.save()
    return project


def binary() -> Path:
    path = Path(os.environ.get("EDX_WEBHOOKS_BINARY", REPO / "target" / "debug" / "edx-webhooks"))
    assert path.exists(), f"build the binary first (cargo build): {path}"
    return path


@pytest.fixture(scope="session")
def accepted_names() -> set:
    """Every environment name the binary reads, from its own list."""
    listed = json.loads(
        subprocess.run([str(binary()), "settings", "--json"], check=True, capture_output=True, text=True).stdout
    )
    names = set()
    for setting in listed:
        names.add(setting["env"])
        names.update(setting["aliases"])
    return names
