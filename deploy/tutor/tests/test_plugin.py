"""The plugin as Tutor renders it: compose files, Caddyfile, LMS settings,
k8s manifests, init tasks and image hooks; the environment it gives the
service checked against the binary, and run against the machine's MariaDB."""

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from conftest import REPO, binary

SERVICE_SETTINGS = {
    # plugin setting: (value set, environment name, value the service gets)
    "WEBHOOKRECEIVER_LMS_ROOT_URL": ("https://lms.example.org", "EDX_WEBHOOKS_LMS_BASE_URL", "https://lms.example.org"),
    "WEBHOOKRECEIVER_EDX_OAUTH2_KEY": ("client-id-1", "EDX_WEBHOOKS_OAUTH2_CLIENT_ID", "client-id-1"),
    "WEBHOOKRECEIVER_EDX_OAUTH2_SECRET": ("client-secret-1", "EDX_WEBHOOKS_OAUTH2_CLIENT_SECRET", "client-secret-1"),
    "WEBHOOKRECEIVER_SHOPIFY_SHOP_DOMAIN": ("shop-1.myshopify.com", "EDX_WEBHOOKS_SHOPIFY_SHOP_DOMAIN", "shop-1.myshopify.com"),
    "WEBHOOKRECEIVER_SHOPIFY_API_KEY": ("shopify-key-1", "EDX_WEBHOOKS_SHOPIFY_API_KEY", "shopify-key-1"),
    "WEBHOOKRECEIVER_WOOCOMMERCE_SOURCE": ("https://shop.example.org/", "EDX_WEBHOOKS_WOOCOMMERCE_SOURCE", "https://shop.example.org/"),
    "WEBHOOKRECEIVER_WOOCOMMERCE_SECRET": ("woo-secret-1", "EDX_WEBHOOKS_WOOCOMMERCE_SECRET", "woo-secret-1"),
    "WEBHOOKRECEIVER_WOOCOMMERCE_REQUIRE_PAYMENT": ("true", "EDX_WEBHOOKS_REQUIRE_PAYMENT", "true"),
    "WEBHOOKRECEIVER_SKU_PREFIX": ("sku/", "EDX_WEBHOOKS_SKU_PREFIX", "sku/"),
    "WEBHOOKRECEIVER_AUTO_ENROLL": ("false", "EDX_WEBHOOKS_AUTO_ENROLL", "false"),
    "WEBHOOKRECEIVER_EMAIL_STUDENTS": ("false", "EDX_WEBHOOKS_SEND_ENROLLMENT_EMAIL", "false"),
    "WEBHOOKRECEIVER_ADMIN_PASSWORD": ("admin-pass-1", "EDX_WEBHOOKS_ADMIN_PASSWORD", "admin-pass-1"),
    "WEBHOOKRECEIVER_DJANGO_LOG_LEVEL": ("WARNING", "DJANGO_LOG_LEVEL", "WARNING"),
}


def compose_environment(service: dict) -> dict:
    """A compose service's environment as the container sees it ($$ is $)."""
    return {name: str(value).replace("$$", "$") for name, value in service["environment"].items()}


def k8s_environment(container: dict) -> dict:
    for variable in container["env"]:
        assert isinstance(variable["value"], str), f"k8s env values are strings: {variable}"
    return {v["name"]: v["value"] for v in container["env"]}


def k8s_object(documents: list, kind: str, name: str) -> dict:
    found = [d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"one {kind} {name}"
    return found[0]


def environments(project) -> dict:
    """Every place the plugin gives the service an environment."""
    local = project.yaml("local/docker-compose.yml")["services"]
    jobs = project.yaml("local/docker-compose.jobs.yml")["services"]
    deployment = k8s_object(project.yaml_documents("k8s/deployments.yml"), "Deployment", "webhookreceiver")
    job = k8s_object(project.yaml_documents("k8s/jobs.yml"), "Job", "webhookreceiver-job")
    return {
        "local service": compose_environment(local["webhookreceiver"]),
        "local job": compose_environment(jobs["webhookreceiver-job"]),
        "k8s deployment": k8s_environment(deployment["spec"]["template"]["spec"]["containers"][0]),
        "k8s job": k8s_environment(job["spec"]["template"]["spec"]["containers"][0]),
    }


def init_script(project, job: str) -> str:
    """The script `tutor local do init` runs in `job` (taken from the docker call)."""
    project.forget_docker_calls()
    project.tutor("local", "do", "init", "--limit=webhookreceiver")
    for call in project.docker_calls():
        if "run" in call and job in call:
            assert call[-3:-1] == ["-e", "-c"], call
            return call[-1]
    raise AssertionError(f"no init task in {job}: {project.docker_calls()}")


def test_local_and_dev_compose_services(project):
    project.save("LMS_HOST=lms.example.org", "ENABLE_HTTPS=true")
    local = project.yaml("local/docker-compose.yml")["services"]
    service = local["webhookreceiver"]
    assert service["image"] == "docker.io/edx-webhooks:0.1.0"
    assert service["depends_on"] == ["mysql"]
    assert service["restart"] == "unless-stopped"
    assert service["stop_grace_period"] == "60s"
    assert "ports" not in service, "reached through Caddy only"
    env = compose_environment(service)
    assert env["EDX_WEBHOOKS_LISTEN"] == "0.0.0.0:8090"
    assert env["EDX_WEBHOOKS_LMS_BASE_URL"] == "https://lms.example.org"
    url = urlsplit(env["EDX_WEBHOOKS_DATABASE_URL"])
    assert (url.scheme, url.hostname, url.port, url.path) == ("mysql", "mysql", 3306, "/webhook_receiver")
    assert url.username == "webhook_receiver01"
    assert unquote(url.password) == project.config()["WEBHOOKRECEIVER_DB_PASSWORD"]
    assert project.yaml("local/docker-compose.jobs.yml")["services"]["webhookreceiver-job"]["depends_on"] == ["mysql"]

    dev = project.yaml("dev/docker-compose.yml")["services"]["webhookreceiver"]
    assert dev["ports"] == ["8090:8090"]
    assert dev["environment"]["EDX_WEBHOOKS_LMS_BASE_URL"] == "http://lms:8000"


def test_external_mysql_without_run_mysql(project):
    project.save("RUN_MYSQL=false", "MYSQL_HOST=db.example.org", "MYSQL_PORT=3307")
    local = project.yaml("local/docker-compose.yml")["services"]["webhookreceiver"]
    job = project.yaml("local/docker-compose.jobs.yml")["services"]["webhookreceiver-job"]
    assert local["depends_on"] == [] and job["depends_on"] == []
    url = urlsplit(compose_environment(local)["EDX_WEBHOOKS_DATABASE_URL"])
    assert (url.hostname, url.port) == ("db.example.org", 3307)
    assert "--host=db.example.org --port=3307" in init_script(project, "mysql-job")


def test_caddy_site_and_lms_feature(project):
    project.save("LMS_HOST=lms.example.org")
    caddyfile = project.read("apps/caddy/Caddyfile")
    site = caddyfile.split("webhooks.lms.example.org{$default_site_port} {", 1)
    assert len(site) == 2, caddyfile
    assert site[1].split("}", 1)[0].strip() == 'import proxy "webhookreceiver:8090"'
    lms = project.yaml("apps/openedx/config/lms.env.yml")
    assert lms["FEATURES"]["ENABLE_BULK_ENROLLMENT_VIEW"] is True
    assert lms["FEATURES"]["ENABLE_COMBINED_LOGIN_REGISTRATION"] is True

    project.save("WEBHOOKRECEIVER_HOST=orders.example.org")
    assert "orders.example.org{$default_site_port} {" in project.read("apps/caddy/Caddyfile")


def test_k8s_deployment_service_and_job(project):
    deployment = k8s_object(project.yaml_documents("k8s/deployments.yml"), "Deployment", "webhookreceiver")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "docker.io/edx-webhooks:0.1.0"
    assert container["ports"] == [{"containerPort": 8090}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": 8090}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": 8090}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["terminationGracePeriodSeconds"] >= 40
    service = k8s_object(project.yaml_documents("k8s/services.yml"), "Service", "webhookreceiver")
    assert service["spec"]["ports"][0]["port"] == 8090
    assert service["spec"]["selector"] == {"app.kubernetes.io/name": "webhookreceiver"}
    k8s_object(project.yaml_documents("k8s/jobs.yml"), "Job", "webhookreceiver-job")
    # Strings even for what YAML would read as a number or a boolean.
    project.save("WEBHOOKRECEIVER_ENV={\"EDX_WEBHOOKS_WORKERS\": 8, \"EDX_WEBHOOKS_UNENROLL_ON_CANCEL\": true}")
    for env in environments(project).values():
        assert (env["EDX_WEBHOOKS_WORKERS"], env["EDX_WEBHOOKS_UNENROLL_ON_CANCEL"]) == ("8", "true")


def test_every_plugin_setting_reaches_every_environment(project):
    project.save(*(f"{name}={value}" for name, (value, _, _) in SERVICE_SETTINGS.items()))
    for place, env in environments(project).items():
        for setting, (_, name, expected) in SERVICE_SETTINGS.items():
            assert env.get(name) == expected, f"{setting} in the {place}: {name}={env.get(name)!r}"
    # The pass-through map reaches every setting, and wins.
    project.save('WEBHOOKRECEIVER_ENV={"EDX_WEBHOOKS_LMS_TIMEOUT": "10s", "EDX_WEBHOOKS_SKU_PREFIX": "p/"}')
    for place, env in environments(project).items():
        assert (env["EDX_WEBHOOKS_LMS_TIMEOUT"], env["EDX_WEBHOOKS_SKU_PREFIX"]) == ("10s", "p/"), place


def test_every_variable_is_one_the_binary_reads(project, accepted_names):
    project.save('WEBHOOKRECEIVER_ENV={"EDX_WEBHOOKS_UNENROLL_ON_CANCEL": true}')
    for place, env in environments(project).items():
        unknown = sorted(set(env) - accepted_names)
        assert not unknown, f"the {place} sets variables the binary does not read: {unknown}"
    dev = project.yaml("dev/docker-compose.yml")["services"]["webhookreceiver"]
    assert set(dev["environment"]) <= accepted_names


def test_generated_secrets_are_stable_across_saves(project):
    unique = ["WEBHOOKRECEIVER_DB_PASSWORD", "WEBHOOKRECEIVER_EDX_OAUTH2_SECRET", "WEBHOOKRECEIVER_ADMIN_PASSWORD"]
    first = {name: project.config()[name] for name in unique}
    assert all(len(value) >= 24 for value in first.values()), first
    project.save()
    project.tutor("plugins", "enable", "webhookreceiver")
    assert {name: project.config()[name] for name in unique} == first


def test_an_old_plugins_config_yml_keeps_its_values(make_project):
    old = """\
PLUGINS:
- webhookreceiver
WEBHOOKRECEIVER_DB_PASSWORD: old-db-pass/with:odd@chars
WEBHOOKRECEIVER_DJANGO_SECRET_KEY: old-django-key
WEBHOOKRECEIVER_EDX_OAUTH2_SECRET: old-oauth2-secret
WEBHOOKRECEIVER_EDX_OAUTH2_KEY: old-client
WEBHOOKRECEIVER_DB_USER: old_user
WEBHOOKRECEIVER_DB_NAME: old_db
WEBHOOKRECEIVER_WOOCOMMERCE_SOURCE: https://shop.example.org
WEBHOOKRECEIVER_WOOCOMMERCE_SECRET: old-woo-secret
WEBHOOKRECEIVER_WOOCOMMERCE_REQUIRE_PAYMENT: true
"""
    project = make_project(old)
    project.save()
    config = project.config()
    assert config["WEBHOOKRECEIVER_DB_PASSWORD"] == "old-db-pass/with:odd@chars"
    assert config["WEBHOOKRECEIVER_EDX_OAUTH2_SECRET"] == "old-oauth2-secret"
    for place, env in environments(project).items():
        url = urlsplit(env["EDX_WEBHOOKS_DATABASE_URL"])
        assert (url.username, unquote(url.password), url.path) == ("old_user", "old-db-pass/with:odd@chars", "/old_db"), place
        assert env["EDX_WEBHOOKS_OAUTH2_CLIENT_ID"] == "old-client"
        assert env["EDX_WEBHOOKS_OAUTH2_CLIENT_SECRET"] == "old-oauth2-secret"
        assert env["EDX_WEBHOOKS_WOOCOMMERCE_SECRET"] == "old-woo-secret"
        assert env["EDX_WEBHOOKS_REQUIRE_PAYMENT"] == "true", f"payment gating carried over in the {place}"
    assert "--client-secret old-oauth2-secret" in init_script(project, "lms-job")


def test_the_old_plugin_installed_beside_is_named(make_project, tmp_path):
    site = tmp_path / "old-site"
    info = site / "tutor_contrib_webhook_receiver-3.3.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tutor-contrib-webhook-receiver\nVersion: 3.3.0\n")
    project = make_project(extra_pythonpath=str(site))
    ran = project.tutor("plugins", "enable", "webhookreceiver", check=False)
    said = ran.stdout + ran.stderr
    assert "pip uninstall tutor-contrib-webhook-receiver" in said, said


def test_image_build_pull_and_push(project):
    project.forget_docker_calls()
    project.tutor("images", "build", "webhookreceiver")
    builds = [c for c in project.docker_calls() if c[:2] == ["buildx", "build"]]
    assert len(builds) == 1, project.docker_calls()
    build = builds[0]
    assert "--tag=docker.io/edx-webhooks:0.1.0" in build
    assert f"--build-context=source={REPO}" in build, "the checkout the plugin came from"
    context = Path(build[-1])
    # The image is built with the repository's Dockerfile (Tutor drops the last newline).
    assert (context / "Dockerfile").read_text().rstrip("\n") == (REPO / "Dockerfile").read_text().rstrip("\n")

    project.save("WEBHOOKRECEIVER_SOURCE=https://git.example.org/edx-webhooks.git#v0.1.0")
    project.forget_docker_calls()
    project.tutor("images", "build", "webhookreceiver")
    assert "--build-context=source=https://git.example.org/edx-webhooks.git#v0.1.0" in project.docker_calls()[-1]

    project.save("WEBHOOKRECEIVER_DOCKER_IMAGE=registry.example.org/edx-webhooks:1")
    project.forget_docker_calls()
    project.tutor("images", "pull", "webhookreceiver")
    project.tutor("images", "push", "webhookreceiver")
    assert project.docker_calls() == [
        ["pull", "registry.example.org/edx-webhooks:1"],
        ["push", "registry.example.org/edx-webhooks:1"],
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mariadb(*args: str, user: str = "root", password: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        ["mysql", "--host=127.0.0.1", "--port=3306", f"--user={user}", f"--password={password}", "-N", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_init_creates_a_working_database_and_the_service_starts_on_it(project, accepted_names):
    suffix = secrets.token_hex(4)
    name, user = f"ew_tutor_{suffix}", f"ew_tutor_{suffix}"
    password = "p@ss:w/rd'$%\"" + suffix
    project.save(
        "MYSQL_HOST=127.0.0.1",
        "MYSQL_PORT=3306",
        "MYSQL_ROOT_USERNAME=root",
        "MYSQL_ROOT_PASSWORD=",
        f"WEBHOOKRECEIVER_DB_NAME={name}",
        f"WEBHOOKRECEIVER_DB_USER={user}",
        f"WEBHOOKRECEIVER_DB_PASSWORD={password}",
        "WEBHOOKRECEIVER_SHOPIFY_SHOP_DOMAIN=shop-1.myshopify.com",
        "WEBHOOKRECEIVER_SHOPIFY_API_KEY=shopify-key-1",
        "WEBHOOKRECEIVER_WOOCOMMERCE_SOURCE=https://shop.example.org/",
        "WEBHOOKRECEIVER_WOOCOMMERCE_SECRET=woo-secret-1",
        "WEBHOOKRECEIVER_WOOCOMMERCE_REQUIRE_PAYMENT=true",
        "WEBHOOKRECEIVER_SKU_PREFIX=sku/",
        "WEBHOOKRECEIVER_DJANGO_LOG_LEVEL=WARN",  # the old plugin's default
    )
    script = init_script(project, "mysql-job")
    service = None
    try:
        for _ in range(2):  # twice: init runs again on every launch
            ran = subprocess.run(["sh", "-e", "-c", script], capture_output=True, text=True, timeout=60)
            assert ran.returncode == 0, ran.stderr
        works = mariadb(name, "-e", "CREATE TABLE t (x INT); DROP TABLE t; SELECT 1", user=user, password=password)
        assert (works.returncode, works.stdout.strip()) == (0, "1"), works.stderr

        env = environments(project)["local service"]
        assert set(env) <= accepted_names
        port = free_port()
        # The rendered environment, as is, but for the port: 8090 may be taken here.
        run_env = {"PATH": os.environ["PATH"], **env, "EDX_WEBHOOKS_LISTEN": f"127.0.0.1:{port}"}
        migrate = subprocess.run(
            [str(binary()), "migrate"], env=run_env, cwd=project.root, capture_output=True, text=True, timeout=120
        )
        assert migrate.returncode == 0, migrate.stderr
        service = subprocess.Popen(
            [str(binary()), "serve"], env=run_env, cwd=project.root,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + 60
        while True:
            assert service.poll() is None, f"the service exited {service.returncode}: {service.stderr.read()}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
                    assert answer.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "not ready within 60 s"
                time.sleep(0.1)
        tables = mariadb("-e", f"SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '{name}'")
        assert int(tables.stdout.strip()) > 3, "migrated"
        health = subprocess.run([str(binary()), "healthcheck", f"http://127.0.0.1:{port}/healthz"], timeout=30)
        assert health.returncode == 0
    finally:
        if service is not None:
            service.terminate()
            service.wait(timeout=60)
        mariadb("-e", f"DROP DATABASE IF EXISTS `{name}`; DROP USER IF EXISTS '{user}'@'%'")


def test_lms_init_creates_the_staff_user_and_its_application(project, tmp_path):
    odd = "s3cret'with \"quotes\" $(and) `a command`"
    project.save(f"WEBHOOKRECEIVER_EDX_OAUTH2_SECRET={odd}", "WEBHOOKRECEIVER_EDX_OAUTH2_KEY=client 1")
    script = init_script(project, "lms-job")
    # A stand-in manage.py records its arguments, as the shell passed them.
    calls = tmp_path / "manage.jsonl"
    manage = tmp_path / "manage.py"
    manage.write_text(
        f"#!{sys.executable}\nimport json, sys\nopen({str(calls)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    manage.chmod(0o755)
    ran = subprocess.run(["sh", "-e", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert ran.returncode == 0, ran.stderr
    recorded = [json.loads(line) for line in calls.read_text().splitlines()]
    assert recorded == [
        ["lms", "manage_user", "webhook_receiver_app_user", "webhook_receiver_app_user@openedx", "--staff", "--unusable-password"],
        [
            "lms", "create_dot_application", "--grant-type", "client-credentials",
            "--client-id", "client 1", "--client-secret", odd, "--update",
            "webhook_receiver", "webhook_receiver_app_user",
        ],
    ]
    assert init_script(project, "webhookreceiver-job") == "edx-webhooks migrate"
