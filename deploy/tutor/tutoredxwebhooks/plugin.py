"""Tutor plugin `webhookreceiver`: runs edx-webhooks beside Open edX, in place
of the Django app's tutor-contrib-webhook-receiver, with the same settings."""

import os
import typing as t
from glob import glob
from importlib import metadata

from tutor import hooks
from tutor.exceptions import TutorError

from . import __version__
from .environment import (
    compose_value,
    env_text,
    shell_quote,
    sql_name,
    sql_string,
    webhookreceiver_environment,
    yaml_string,
)

HERE = os.path.abspath(os.path.dirname(__file__))
OLD_PLUGIN = "tutor-contrib-webhook-receiver"


def _old_plugin_version() -> t.Optional[str]:
    try:
        return metadata.distribution(OLD_PLUGIN).version
    except metadata.PackageNotFoundError:
        return None


# Both would answer to `webhookreceiver`, and their patches would clash.
if _old_plugin_version() is not None:
    raise TutorError(
        f"the old Django app's plugin {OLD_PLUGIN} {_old_plugin_version()} is installed "
        "beside tutor-contrib-edx-webhooks, and both are named 'webhookreceiver'. "
        f"Uninstall the old one (pip uninstall {OLD_PLUGIN}), then run "
        "'tutor config save': your WEBHOOKRECEIVER_* settings and secrets are kept."
    )


def _checkout() -> str:
    """The edx-webhooks repository this plugin was installed from, if it was."""
    root = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
    return root if os.path.exists(os.path.join(root, "Cargo.toml")) else ""


hooks.Filters.CONFIG_DEFAULTS.add_items(
    [
        (f"WEBHOOKRECEIVER_{key}", value)
        for key, value in {
            "VERSION": __version__,
            "DOCKER_IMAGE": "{{ DOCKER_REGISTRY }}edx-webhooks:{{ WEBHOOKRECEIVER_VERSION }}",
            # What `tutor images build webhookreceiver` builds: a checkout or a git URL.
            "SOURCE": _checkout(),
            "HOST": "webhooks.{{ LMS_HOST }}",
            "DB_NAME": "webhook_receiver",
            "DB_USER": "webhook_receiver01",
            "DJANGO_LOG_LEVEL": "INFO",
            "LMS_ROOT_URL": "{{ 'https' if ENABLE_HTTPS else 'http' }}://{{ LMS_HOST }}",
            "EDX_OAUTH2_KEY": "webhook_receiver",
            "LMS_USER": "webhook_receiver_app_user",
            "LMS_USER_EMAIL": "webhook_receiver_app_user@openedx",
            "SHOPIFY_SHOP_DOMAIN": "",
            "SHOPIFY_API_KEY": "",
            "WOOCOMMERCE_SOURCE": "",
            "WOOCOMMERCE_SECRET": "",
            "WOOCOMMERCE_REQUIRE_PAYMENT": False,
            "SKU_PREFIX": "",
            "AUTO_ENROLL": True,
            "EMAIL_STUDENTS": True,
            # Any EDX_WEBHOOKS_* setting, e.g. {"EDX_WEBHOOKS_UNENROLL_ON_CANCEL": true}.
            "ENV": {},
        }.items()
    ]
)

# Generated once, saved in config.yml; an existing config.yml's values win.
hooks.Filters.CONFIG_UNIQUE.add_items(
    [
        ("WEBHOOKRECEIVER_DB_PASSWORD", "{{ 32|random_string }}"),
        ("WEBHOOKRECEIVER_EDX_OAUTH2_SECRET", "{{ 32|random_string }}"),
        ("WEBHOOKRECEIVER_ADMIN_PASSWORD", "{{ 24|random_string }}"),
    ]
)

hooks.Filters.ENV_TEMPLATE_VARIABLES.add_item(
    ("webhookreceiver_environment", webhookreceiver_environment)
)
hooks.Filters.ENV_TEMPLATE_FILTERS.add_items(
    [
        ("webhookreceiver_compose_value", compose_value),
        ("webhookreceiver_yaml_string", yaml_string),
        ("webhookreceiver_sql_string", sql_string),
        ("webhookreceiver_sql_name", sql_name),
        ("webhookreceiver_shell_quote", shell_quote),
        ("webhookreceiver_env_text", env_text),
    ]
)

for service in ["mysql", "lms", "webhookreceiver"]:
    with open(
        os.path.join(HERE, "templates", "webhookreceiver", "tasks", service, "init"),
        encoding="utf-8",
    ) as task:
        hooks.Filters.CLI_DO_INIT_TASKS.add_item((service, task.read()))


@hooks.Filters.IMAGES_BUILD.add()
def _build_image(images: list, config: dict) -> list:
    # The root Dockerfile's `source` stage is replaced by the checkout (or git URL).
    source = env_text(config.get("WEBHOOKRECEIVER_SOURCE")).strip()
    args: tuple = ()
    if source:
        args = (f"--build-context=source={source}",)
    images.append(
        (
            "webhookreceiver",
            ("plugins", "webhookreceiver", "build", "webhookreceiver"),
            "{{ WEBHOOKRECEIVER_DOCKER_IMAGE }}",
            args,
        )
    )
    return images


hooks.Filters.IMAGES_PULL.add_item(("webhookreceiver", "{{ WEBHOOKRECEIVER_DOCKER_IMAGE }}"))
hooks.Filters.IMAGES_PUSH.add_item(("webhookreceiver", "{{ WEBHOOKRECEIVER_DOCKER_IMAGE }}"))

hooks.Filters.ENV_TEMPLATE_ROOTS.add_item(os.path.join(HERE, "templates"))
hooks.Filters.ENV_TEMPLATE_TARGETS.add_item(("webhookreceiver/build", "plugins"))

for path in sorted(glob(os.path.join(HERE, "patches", "*"))):
    with open(path, encoding="utf-8") as patch:
        hooks.Filters.ENV_PATCHES.add_item((os.path.basename(path), patch.read()))
