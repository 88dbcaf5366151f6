"""The Dockerfile's structure (no Docker engine is needed to check it)."""

import json
import re
from pathlib import Path

from conftest import REPO

PLUGIN_COPY = REPO / "deploy/tutor/tutoredxwebhooks/templates/webhookreceiver/build/webhookreceiver/Dockerfile"


def instructions(text: str) -> list:
    """(INSTRUCTION, arguments) with continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def final_stage(text: str) -> list:
    steps = instructions(text)
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def test_the_plugin_builds_with_the_same_dockerfile():
    assert PLUGIN_COPY.read_text() == (REPO / "Dockerfile").read_text()


def test_runtime_stage_runs_the_service_as_a_user_with_a_volume_and_a_healthcheck():
    text = (REPO / "Dockerfile").read_text()
    froms = [rest for word, rest in instructions(text) if word == "FROM"]
    assert len(froms) >= 3 and "rust" in froms[1], f"multi-stage: source, build, runtime: {froms}"
    assert froms[-1].startswith("docker.io/library/debian:") and "slim" in froms[-1]
    stage = dict((word, rest) for word, rest in final_stage(text) if word != "RUN" and word != "COPY")
    assert json.loads(stage["CMD"]) == ["edx-webhooks", "serve"], "exec form"
    assert all(word != "ENTRYPOINT" for word, _ in instructions(text))
    user = stage["USER"].split(":")[0]
    assert user not in ("root", "0")
    assert stage["EXPOSE"] == "8090"
    assert json.loads(stage["VOLUME"]) == ["/data"]
    assert stage["WORKDIR"] == "/data", "the SQLite default file is made in the volume"
    assert stage["ENV"] == "EDX_WEBHOOKS_LISTEN=0.0.0.0:8090"
    health = stage["HEALTHCHECK"]
    options, _, command = health.partition(" CMD ")
    assert json.loads(command) == ["edx-webhooks", "healthcheck"], "the binary probes itself: no curl needed"
    assert "--timeout=" in options


def test_the_build_copies_only_what_exists_and_the_context_leaves_target_out():
    text = (REPO / "Dockerfile").read_text()
    for word, rest in instructions(text):
        if word == "COPY" and rest.startswith("--from=source"):
            for source in rest.split()[1:-1]:
                assert (REPO / source.lstrip("/")).exists(), source
    ignored = (REPO / ".dockerignore").read_text().split()
    assert "target/" in ignored and ".env" in ignored



def test_the_build_copies_every_file_the_compiler_reads():
    """What src/ reads at compile time (migrations, templates, included files) is copied."""
    text = (REPO / "Dockerfile").read_text()
    copied = set()
    for word, rest in instructions(text):
        if word == "COPY" and rest.startswith("--from=source"):
            copied.update(Path(source.lstrip("/")).parts[0] for source in rest.split()[1:-1])
    assert {"Cargo.toml", "Cargo.lock", "src"} <= copied
    needed = set()
    for file in (REPO / "src").rglob("*.rs"):
        code = file.read_text()
        for included in re.findall(r'include_(?:str|bytes)!\("([^"]+)"\)', code):
            needed.add((file.parent / included).resolve().relative_to(REPO).parts[0])
        for migrations in re.findall(r'migrate!\("([^"]+)"\)', code):
            needed.add(Path(migrations).parts[0] if not migrations.startswith("./") else Path(migrations[2:]).parts[0])
        if "#[template(" in code:
            needed.add("templates")  # askama's default directory
    assert {"migrations", "templates"} <= needed, needed
    assert needed <= copied, f"read by the compiler but not copied: {needed - copied}"
    ignored = (REPO / ".dockerignore").read_text().split()
    assert not {f"{name}/" for name in needed} & set(ignored)
