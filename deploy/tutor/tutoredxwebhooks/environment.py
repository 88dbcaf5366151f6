"""The service's environment, built once from the Tutor settings: every patch
(compose, k8s) renders this list, so none can forget a setting."""

import shlex
import typing as t
from urllib.parse import quote

import jinja2

#: The private networks: only containers on Tutor's networks (Caddy) reach
#: the service, whose port is not published.
PRIVATE_NETWORKS = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"


def env_text(value: t.Any) -> str:
    """A setting's value as the binary reads it: booleans as true/false, none as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def database_url(config: t.Mapping[str, t.Any]) -> str:
    """mysql://USER:PASSWORD@MYSQL_HOST:MYSQL_PORT/DB_NAME, user and password percent-encoded."""
    user = quote(env_text(config["WEBHOOKRECEIVER_DB_USER"]), safe="")
    password = quote(env_text(config["WEBHOOKRECEIVER_DB_PASSWORD"]), safe="")
    host = env_text(config["MYSQL_HOST"])
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    name = quote(env_text(config["WEBHOOKRECEIVER_DB_NAME"]), safe="")
    return f"mysql://{user}:{password}@{host}:{env_text(config['MYSQL_PORT'])}/{name}"


def environment(config: t.Mapping[str, t.Any]) -> list[tuple[str, str]]:
    """(name, value) of every variable the container gets, as text."""
    setting = lambda name: env_text(config[f"WEBHOOKRECEIVER_{name}"])  # noqa: E731
    variables = {
        "EDX_WEBHOOKS_LISTEN": "0.0.0.0:8090",
        "EDX_WEBHOOKS_DATABASE_URL": database_url(config),
        "EDX_WEBHOOKS_LMS_BASE_URL": setting("LMS_ROOT_URL"),
        "EDX_WEBHOOKS_OAUTH2_CLIENT_ID": setting("EDX_OAUTH2_KEY"),
        "EDX_WEBHOOKS_OAUTH2_CLIENT_SECRET": setting("EDX_OAUTH2_SECRET"),
        "EDX_WEBHOOKS_SHOPIFY_SHOP_DOMAIN": setting("SHOPIFY_SHOP_DOMAIN"),
        "EDX_WEBHOOKS_SHOPIFY_API_KEY": setting("SHOPIFY_API_KEY"),
        "EDX_WEBHOOKS_WOOCOMMERCE_SOURCE": setting("WOOCOMMERCE_SOURCE"),
        "EDX_WEBHOOKS_WOOCOMMERCE_SECRET": setting("WOOCOMMERCE_SECRET"),
        "EDX_WEBHOOKS_REQUIRE_PAYMENT": setting("WOOCOMMERCE_REQUIRE_PAYMENT"),
        "EDX_WEBHOOKS_SKU_PREFIX": setting("SKU_PREFIX"),
        "EDX_WEBHOOKS_AUTO_ENROLL": setting("AUTO_ENROLL"),
        "EDX_WEBHOOKS_SEND_ENROLLMENT_EMAIL": setting("EMAIL_STUDENTS"),
        "EDX_WEBHOOKS_ADMIN_PASSWORD": setting("ADMIN_PASSWORD"),
        "EDX_WEBHOOKS_TRUSTED_PROXIES": PRIVATE_NETWORKS,
        "DJANGO_LOG_LEVEL": setting("DJANGO_LOG_LEVEL"),
    }
    # The pass-through map: any other setting, or a different value for one above.
    for name, value in (config.get("WEBHOOKRECEIVER_ENV") or {}).items():
        variables[str(name)] = env_text(value)
    return list(variables.items())


@jinja2.pass_context
def webhookreceiver_environment(context: t.Any) -> list[tuple[str, str]]:
    """The template function: the configuration is the render context."""
    return environment(context)


def compose_value(value: str) -> str:
    """A YAML double-quoted scalar with compose's `$` interpolation escaped."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "$$")
    return '"' + escaped.replace("\n", "\\n") + '"'


def yaml_string(value: str) -> str:
    """A YAML double-quoted scalar (k8s: every env value a string)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n") + '"'


def sql_string(value: t.Any) -> str:
    """A MySQL string literal."""
    text = env_text(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def sql_name(value: t.Any) -> str:
    """A MySQL quoted identifier."""
    return "`" + env_text(value).replace("`", "``") + "`"


def shell_quote(value: t.Any) -> str:
    return shlex.quote(env_text(value))
