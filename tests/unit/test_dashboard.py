"""The Grafana dashboard, its provisioning and the Prometheus that feeds it stay in step with the
code and the compose file: every metric a panel asks for is one the processes export (rename a
metric without the dashboard and this fails), every panel reads the provisioned datasource, and
Prometheus scrapes compose services on the ports they listen on."""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
PROMETHEUS_CONFIG = DOCKER / "prometheus.yml"
DATASOURCES = DOCKER / "grafana" / "provisioning" / "datasources" / "prometheus.yaml"
PROVIDERS = DOCKER / "grafana" / "provisioning" / "dashboards" / "dashboards.yaml"
DASHBOARD = DOCKER / "grafana" / "dashboards" / "fulfillment.json"
#: The product's packages (not the sandbox, bench or tests): where exported metrics are defined.
PACKAGES = (
    "app",
    "tasks",
    "notifier",
    "integrations",
    "settings",
    "observability",
    "fulfillment",
    "streaming",
    "listener",
)
#: The processes that serve /metrics, as compose names them.
SCRAPED = {"web-a", "web-b", "worker", "listener", "flower"}
#: Grafana's variables, as Prometheus would see them for a one-hour dashboard.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}

_DEFINITION = re.compile(r"\b(?:Counter|Gauge|Histogram|Summary|Info)\(\s*\n?\s*\"")
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
}
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
_KEYWORDS |= {"and", "or", "unless", "atan2", "inf", "nan"}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def panels(container: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows included; rows themselves left out."""
    for panel in container.get("panels", []):
        if panel.get("type") == "row":
            yield from panels(panel)
        else:
            yield panel


def expressions() -> list[tuple[str, str]]:
    """(panel title, PromQL) for every query of every panel."""
    return [
        (panel["title"], target["expr"])
        for panel in panels(dashboard())
        for target in panel.get("targets", [])
    ]


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression selects: what is left once strings, label
    matchers, ranges, grouping clauses, function calls, keywords and numbers are set aside."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])([A-Za-z_:][\w:]*)(\s*\()?", text):
        name, call = match.groups()
        if not call and name.lower() not in _KEYWORDS:
            names.add(name)
    return names


def exported_series() -> set[str]:
    """Every series name the processes can export: each product module that defines a metric
    is imported (so its metrics are in prometheus_client's registry), Flower's metrics are
    made as Flower makes them, and the registry's families are spelled out per type."""
    from prometheus_client import REGISTRY

    for package in PACKAGES:
        for source in sorted((ROOT / package).rglob("*.py")):
            if _DEFINITION.search(source.read_text()):
                module = source.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")
                importlib.import_module(module.removesuffix(".__init__"))
    importlib.import_module("flower.options")  # defines the buckets Flower's metrics use
    importlib.import_module("flower.events").get_prometheus_metrics()
    return {
        family.name + suffix
        for family in REGISTRY.collect()
        for suffix in _SUFFIXES.get(family.type, ("",))
    }


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'histogram_quantile(0.95, sum by (le, step) (rate(a_seconds_bucket{x="y"}[$r])))',
            {"a_seconds_bucket"},
        ),
        ("sum(rate(b_total[5m])) * 60 / sum(c)", {"b_total", "c"}),
        ('sum by (reason) (rate(d_total{reason=~"a|b(c)"}[1m])) or vector(0)', {"d_total"}),
        ("e offset 5m > bool 1 and on (job) f", {"e", "f"}),
    ],
)
def test_metric_names_finds_the_series_of_an_expression(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_every_metric_the_dashboard_asks_for_is_exported() -> None:
    exported = exported_series()
    assert "fulfillment_step_seconds_bucket" in exported  # the registry was read
    missing = {}
    for title, expr in expressions():
        names = metric_names(expr)
        assert names, f"{title}: no metric in {expr!r}"
        if names - exported:
            missing[title] = sorted(names - exported)
    assert not missing, f"panels asking for metrics no process exports: {missing}"


def test_the_dashboard_covers_what_operations_watch() -> None:
    asked = {name for _, expr in expressions() for name in metric_names(expr)}
    for name in (
        "fulfillment_streams_open",
        "fulfillment_stream_opens_total",
        "fulfillment_stream_closes_total",
        "fulfillment_streams_shed_total",
        "fulfillment_streams_deferred_total",
        "fulfillment_streams_over_quota_total",
        "fulfillment_event_delivery_seconds_bucket",
        "fulfillment_orders_total",
        "fulfillment_step_seconds_bucket",
        "fulfillment_retries_total",
        "fulfillment_external_call_seconds_bucket",
        "fulfillment_external_call_seconds_count",
        "flower_events_total",
    ):
        assert name in asked, name
    # Histograms are read as histograms: quantiles over rates of their buckets.
    for title, expr in expressions():
        if "_bucket" in expr:
            assert "histogram_quantile(" in expr and "rate(" in expr, title
            assert re.search(r"by \((?:[\w, ]*\b)?le\b", expr), f"{title}: quantile without le"


def test_every_panel_reads_the_provisioned_datasource() -> None:
    (datasource,) = load_yaml(DATASOURCES)["datasources"]
    uid = datasource["uid"]
    assert datasource["type"] == "prometheus"
    found = list(panels(dashboard()))
    assert len(found) >= 10
    for panel in found:
        assert panel["type"] in {"timeseries", "stat"}, panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": uid}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "prometheus", "uid": uid}, panel["title"]


def test_the_dashboard_is_well_formed() -> None:
    board = dashboard()
    assert board["uid"] and board["title"]
    assert 36 <= board["schemaVersion"] <= 41
    every = board["panels"]  # rows included: they take grid space too
    ids = [panel["id"] for panel in every]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    cells: dict[tuple[int, int], str] = {}
    for panel in every:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[x, y]}"
                cells[x, y] = panel["title"]


def compose_services() -> dict[str, Any]:
    return dict(load_yaml(COMPOSE)["services"])


def listening_ports(service: dict[str, Any]) -> set[int]:
    """The ports a compose service's process listens on: its `*PORT` variables and the
    `--port=` of its command."""
    ports = {
        int(value)
        for name, value in (service.get("environment") or {}).items()
        if name.endswith("PORT") and str(value).isdigit()
    }
    command = service.get("command") or []
    command = " ".join(command) if isinstance(command, list) else command
    ports |= {int(port) for port in re.findall(r"--port[= ](\d+)", command)}
    return ports


def scrape_targets() -> dict[str, list[str]]:
    config = load_yaml(PROMETHEUS_CONFIG)
    return {
        job["job_name"]: [t for static in job["static_configs"] for t in static["targets"]]
        for job in config["scrape_configs"]
    }


def test_prometheus_scrapes_compose_services_on_their_ports() -> None:
    services = compose_services()
    scraped = set()
    for job, targets in scrape_targets().items():
        for target in targets:
            host, _, port = target.rpartition(":")
            assert host in services, f"job {job}: no compose service {host}"
            assert int(port) in listening_ports(services[host]), (
                f"job {job}: {host} does not listen on {port} "
                f"(it listens on {sorted(listening_ports(services[host]))})"
            )
            scraped.add(host)
    assert scraped == SCRAPED


def test_compose_wires_prometheus_and_grafana_to_their_files() -> None:
    services = compose_services()
    prometheus, grafana = services["prometheus"], services["grafana"]
    assert prometheus["image"].startswith("prom/prometheus")
    assert grafana["image"].startswith("grafana/grafana")
    config_flag = next(a for a in prometheus["command"] if a.startswith("--config.file="))
    assert f"./prometheus.yml:{config_flag.split('=', 1)[1]}:ro" in prometheus["volumes"]
    assert "127.0.0.1:9090:9090" in prometheus["ports"]
    assert "127.0.0.1:3000:3000" in grafana["ports"]
    assert grafana["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert grafana["environment"]["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"

    mounts = dict(volume.split(":")[:2] for volume in grafana["volumes"])
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    assert (DOCKER / "grafana" / "provisioning").is_dir()
    # The dashboards folder is mounted where the provider looks for dashboards.
    (provider,) = load_yaml(PROVIDERS)["providers"]
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert DASHBOARD.parent == DOCKER / "grafana" / "dashboards"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/{DASHBOARD.name}"

    # The datasource is this Prometheus, at its scrape interval.
    (datasource,) = load_yaml(DATASOURCES)["datasources"]
    assert datasource["url"] == "http://prometheus:9090"
    scrape_interval = load_yaml(PROMETHEUS_CONFIG)["global"]["scrape_interval"]
    assert datasource["jsonData"]["timeInterval"] == scrape_interval


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    return found


def test_promtool_accepts_the_prometheus_config() -> None:
    result = subprocess.run(
        [promtool(), "check", "config", str(PROMETHEUS_CONFIG)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_parses_every_panel_query(tmp_path: Path) -> None:
    """Each query as a recording rule (Grafana's variables filled in): `promtool check rules`
    parses its PromQL the way Prometheus will."""
    tool = promtool()
    rules = []
    for number, (_, expr) in enumerate(expressions()):
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, expr
        rules.append({"record": f"dashboard:query_{number}", "expr": expr})
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [tool, "check", "rules", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout
