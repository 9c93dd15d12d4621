"""Pure rendering: EdgeConfig → {relative path: file text}. Deterministic, so goldens can pin it.

The template uses `{{name}}` placeholders, replaced by plain substitution: no template engine, and no
clash with Kamailio's own `$var`, `{s.int}` and `#!` syntax. Every placeholder must be supplied and
every supplied value used, so a typo fails loudly instead of shipping a half-rendered config.
"""

from __future__ import annotations

import re
from importlib import resources

from trunkline.sip import upstreams
from trunkline.sip.state import EdgeConfig

CONFIG_FILE = "kamailio.cfg"
BOOT_TEMPLATE = """\
# Rendered by trunkline.sip.render: the script Kamailio's app_python3 loads. Do not edit.
import sys

sys.path.extend({paths!r})

from trunkline.sip.kamailio_app import App


def mod_init():
    return App({spool!r}, counters={counters!r})
"""
# The tls module's own file (https://kamailio.org/docs/modules/5.6.x/modules/tls.html, "tls.cfg"):
# TLS 1.2 or newer. Clients (phones, PBXs) are not asked for certificates, and the edge does not check
# a PBX's certificate when it calls one over TLS: PBXs commonly present self-signed ones.
TLS_TEMPLATE = """\
# Rendered by trunkline.sip.render: the tls module's configuration. Do not edit.
[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
certificate = {cert}
private_key = {key}

[client:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
"""
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


class RenderError(Exception):
    """The template and the values given to it do not fit together."""


def render(config: EdgeConfig) -> dict[str, str]:
    """Every file Kamailio needs, by path relative to the runtime directory."""
    template = resources.files("trunkline.sip").joinpath("templates", "kamailio.cfg.tmpl").read_text()
    return {CONFIG_FILE: fill(template, values(config))}


def python_boot(config: EdgeConfig) -> str:
    """The boot script for app_python3 (written to config.python_boot, outside the checked config)."""
    counters = None
    if config.counters_url:
        counters = {
            "url": config.counters_url,
            "prefix": config.counters_prefix,
            "lease_seconds": config.counter_lease_seconds,
            "unavailable": config.counters_unavailable,
        }
    return BOOT_TEMPLATE.format(
        paths=list(config.python_path), spool=str(config.call_spool), counters=counters
    )


def tls_config(config: EdgeConfig) -> str | None:
    """The tls module's file (written to config.tls_config); None without a TLS listener."""
    if config.tls_port is None or config.tls_cert is None or config.tls_key is None:
        return None
    return TLS_TEMPLATE.format(cert=config.tls_cert, key=config.tls_key)


def dispatcher_list(config: EdgeConfig) -> str | None:
    """The upstreams as dispatcher's list file (written to config.dispatcher_list); None without any."""
    return upstreams.dispatcher_list(config.upstreams) if config.upstreams else None


def values(config: EdgeConfig) -> dict[str, str]:
    defines = ["#!define WITH_SQLITE" if config.engine == "sqlite" else "#!define WITH_PGSQL"]
    if config.algorithm == "SHA-256":
        defines.append("#!define WITH_SHA256")
    if config.upstreams:
        defines.append("#!define WITH_UPSTREAM")
    if config.tls_port is not None:
        defines.append("#!define WITH_TLS")
    if config.counters_url:
        defines.append("#!define WITH_SHARED_COUNTS")
    if config.peers:
        defines.append("#!define WITH_PEERS")
    files = config.sqlite_files
    app_path, edge_path = files if files else ("", "")
    return {
        "defines": "\n".join(defines),
        "app_db_url": _subst_safe(config.app_db_url),
        "edge_db_url": _subst_safe(config.edge_db_url),
        "app_db_path": app_path,
        "edge_db_path": edge_path,
        "realm": _subst_safe(config.realm),
        "sip_domain": _subst_safe(config.sip_domain.lower()),
        "debug": str(config.debug),
        "children": str(config.children),
        "tcp_children": str(config.tcp_children),
        "sip_host": config.sip_host,
        "sip_port": str(config.sip_port),
        "tls_port": str(config.tls_port or 0),
        "tls_config": str(config.tls_config),
        "run_dir": str(config.run_dir),
        "rpc_socket": str(config.rpc_socket),
        # db_mode 2 (write-back) on SQLite keeps one Kamailio writer; 3 (DB only) on PostgreSQL
        # shares the bindings between edges.
        "usrloc_db_mode": "2" if config.engine == "sqlite" else "3",
        "timer_interval": str(config.timer_interval),
        "min_expires": str(config.min_expires),
        "max_expires": str(config.max_expires),
        "default_expires": str(config.default_expires),
        "password_column": "ha1_sha256" if config.algorithm == "SHA-256" else "ha1",
        "reply_timeout_ms": str(config.reply_timeout_ms),
        "dispatcher_list": str(config.dispatcher_list),
        "upstream_probe_seconds": str(config.upstream_probe_seconds),
        "python_boot": str(config.python_boot),
        "renew_seconds": str(config.renew_seconds),
        "peers": peers_pattern(config.peers),
        "path_hop": path_hop(config),
    }


def path_hop(config: EdgeConfig) -> str:
    """This edge as a loose-routing hop (RFC 3261 section 19.1.1; an IPv6 host in brackets)."""
    host = f"[{config.sip_host}]" if ":" in config.sip_host else config.sip_host
    return f"sip:{host}:{config.sip_port};lr"


def peers_pattern(peers: tuple[str, ...]) -> str:
    """The other edges' addresses (IP addresses, checked by config.py) as an anchored regular
    expression over $si (request_route, route FROM_PEER); dots as `[.]`, which no quoting rule can change."""
    if not peers:
        return "^$"
    return "^(" + "|".join(p.replace(".", "[.]") for p in peers) + ")$"


def fill(template: str, vals: dict[str, str]) -> str:
    wanted = set(_PLACEHOLDER.findall(template))
    if missing := wanted - vals.keys():
        raise RenderError(f"no value for placeholders {sorted(missing)}")
    if unused := vals.keys() - wanted:
        raise RenderError(f"values not used by the template: {sorted(unused)}")
    return _PLACEHOLDER.sub(lambda m: vals[m.group(1)], template)


def _subst_safe(value: str) -> str:
    # `!` delimits #!substdef; a value containing it would end the substitution early.
    if "!" in value or "\n" in value:
        raise RenderError(f"value {value!r} cannot be used in the Kamailio config")
    return value
