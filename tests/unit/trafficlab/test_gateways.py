"""Gateway configuration and the Traefik builder module's generated parts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import yaml

from graylane.cluster import gateways as build
from graylane.trafficlab import gateways as gw


def test_routes_attach_to_both_implementations() -> None:
    assert gw.parent_refs() == [
        {"name": "lab", "namespace": "gateways"},
        {"name": "contour", "namespace": "gateways"},
    ]
    kinds = [(obj["kind"], obj["metadata"]["name"]) for _, obj in gw.gateway_objects()]
    assert kinds == [
        ("IngressClass", "nginx"),
        ("Namespace", "gateways"),
        ("GatewayClass", "traefik"),
        ("GatewayClass", "contour"),
        ("Gateway", "lab"),
        ("Gateway", "contour"),
    ]
    ingress_class = gw.gateway_objects()[0][1]
    assert ingress_class["spec"]["controller"] == "k8s.io/ingress-nginx"  # what Traefik's provider serves


def test_traefik_listens_on_the_gateway_port_and_a_separate_nginx_entry_point(tmp_path: Path) -> None:
    argv = gw.traefik_argv(Path("/bin/traefik"), tmp_path)
    config = yaml.safe_load((tmp_path / "traefik.yaml").read_text())
    assert argv == ["/bin/traefik", f"--configFile={tmp_path / 'traefik.yaml'}"]
    assert config["entryPoints"]["web"]["address"] == f":{gw.GATEWAY_PORT}"
    assert config["providers"]["kubernetesIngressNGINX"]["httpEntryPoint"] == "nginx"
    assert config["entryPoints"]["ping"]["address"].startswith("127.0.0.1:")


def test_contour_skips_the_kinds_the_v1_6_crds_no_longer_serve(tmp_path: Path) -> None:
    argv = gw.contour_argv(Path("/bin/contour"), tmp_path, tmp_path / "kubeconfig")
    assert "--disable-feature=backendtlspolicies" in argv
    assert "--no-incluster" in argv
    assert (
        yaml.safe_load((tmp_path / "contour.yaml").read_text())["gateway"]["gatewayRef"]["name"] == "contour"
    )


def test_lego_stub_replaces_only_the_dns_registry(tmp_path: Path) -> None:
    source = tmp_path / "lego"
    (source / "providers" / "dns" / "route53").mkdir(parents=True)
    (source / "providers" / "dns" / "zz_gen_dns_providers.go").write_text(
        "package dns // imports every SDK\n"
    )
    (source / "providers" / "dns" / "route53" / "route53.go").write_text("package route53\n")
    (source / "challenge").mkdir()
    (source / "challenge" / "challenge.go").write_text("package challenge\n")
    (source / "challenge" / "challenge_test.go").write_text("package challenge\n")
    (source / "go.mod").write_text("module github.com/go-acme/lego/v5\n")
    (source / "go.mod").chmod(0o444)  # module cache files are read-only

    target = tmp_path / "out"
    build.write_lego_stub(source, target)

    assert sorted(p.name for p in (target / "providers" / "dns").iterdir()) == ["dns.go"]
    assert "NewDNSChallengeProviderByName" in (target / "providers" / "dns" / "dns.go").read_text()
    assert (target / "challenge" / "challenge.go").exists()
    assert not (target / "challenge" / "challenge_test.go").exists()
    (target / "go.mod").write_text("module github.com/go-acme/lego/v5\n")  # the copy is writable


def test_ext_module_declares_the_two_structs_traefik_embeds(tmp_path: Path) -> None:
    build.write_ext_module(tmp_path)
    assert (tmp_path / "go.mod").read_text().startswith(f"module {build.EXT_MODULE}\n")
    source = (tmp_path / "ext.go").read_text()
    assert "type HTTP struct{}" in source
    assert "type Router struct{}" in source


def test_builder_directives_replace_what_the_proxy_refuses() -> None:
    joined = " ".join(build.TRAEFIK_DIRECTIVES)
    assert "-replace=github.com/traefik/traefik/dynamic/ext=./ext" in joined
    assert "-replace=github.com/go-acme/lego/v5=./lego" in joined
    assert "-exclude=github.com/tencentcloud/tencentcloud-sdk-go@v3.0.83+incompatible" in joined
    assert build.GatewayVersions().key == "traefik-v3.7.13_contour-v1.33.7"


def test_envoy_failures_are_the_non_2xx_access_log_lines() -> None:
    ok = (
        '[2026-12-05T06:02:30.975Z] "GET / HTTP/1.1" 200 - 0 358 1 0 "10.124.0.1" "aiohttp" "id" '
        '"exp.route.test" "10.123.0.3:8080"'
    )
    no_cluster = (
        '[2026-12-05T06:02:30.976Z] "GET / HTTP/1.1" 503 NC 0 0 0 - "10.124.0.1" "aiohttp" "id" '
        '"exp.route.test" "-"'
    )
    earlier = no_cluster.replace("06:02:30.976Z", "06:02:29.999Z").replace("503 NC", "503 UH")
    warning = "[2026-12-05 00:16:17.816][15164][warning][main] [source/server/server.cc:1059] 503 words"
    log = "\n".join([earlier, ok, no_cluster, warning, ok])
    assert gw.envoy_failures(log) == [earlier, no_cluster]
    since = dt.datetime(2026, 12, 5, 6, 2, 30, tzinfo=dt.UTC)
    assert gw.envoy_failures(log, since) == [no_cluster], "a request started before `since` is not counted"
