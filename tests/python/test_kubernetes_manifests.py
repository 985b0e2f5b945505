"""The Kubernetes manifests of `kmsim deploy kubernetes`, checked without a Kubernetes cluster:
rendered by kustomize (`kubectl kustomize`, which needs no cluster) where kubectl is installed,
every object validated against the Kubernetes schemas of the oldest version the manifests
support and the newest one kubernetes-validate knows, in strict mode (an unknown field is an
error); names, ports and addresses checked against the topology the command wrote, with
PyYAML (not kmsim's own YAML writer) reading the files; and the committed deploy/kubernetes/
checked to be what the command writes for the default topology.

The binary is $KMSIM_BIN, else $CARGO_TARGET_DIR/release/kmsim, else target/release/kmsim.
"""

import os
import pathlib
import shutil
import subprocess
import tomllib

import kubernetes_validate
import pytest
import yaml

from conftest import ROOT, kmsim_bin

# StatefulSet `ordinals` (pod ordinal = Raft id) is GA from 1.31; kubernetes-validate's newest.
OLDEST = "1.31.0"
NEWEST = kubernetes_validate.latest_version()
COMMITTED = ROOT / "deploy" / "kubernetes"


def deploy(out: pathlib.Path, *args: str) -> str:
    exe = kmsim_bin()
    assert os.path.exists(exe), f"kmsim binary not found at {exe}: build it or set KMSIM_BIN"
    run = subprocess.run([exe, "deploy", "kubernetes", "--out", str(out), *args],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, f"kmsim deploy kubernetes failed:\n{run.stdout}\n{run.stderr}"
    return run.stdout


def documents(path: pathlib.Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def rendered(out: pathlib.Path) -> list[dict]:
    """What `kubectl apply -k` would send: kustomize's output where kubectl is installed, else
    the kustomization's resources as written (the generated ConfigMap and Secrets missing)."""
    kustomization = documents(out / "kustomization.yaml")[0]
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        objects = []
        for f in kustomization["resources"]:
            objects += documents(out / f)
        return objects
    run = subprocess.run([kubectl, "kustomize", str(out)], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    return [d for d in yaml.safe_load_all(run.stdout) if d is not None]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    out = tmp_path_factory.mktemp("k8s") / "manifests"
    printed = deploy(out, "--regions", "us-east-1,eu-west-1", "--nodes", "3",
                     "--name", "kms", "--namespace", "kms-test")
    return out, printed


def test_every_file_and_every_rendered_object_is_valid_for_kubernetes(project):
    out, printed = project
    assert f"kubectl apply -k {out}" in printed
    kustomization = documents(out / "kustomization.yaml")[0]
    # The kustomization names exactly the manifests the command wrote.
    written = sorted(p.name for p in out.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(kustomization["resources"]) == written
    objects = []
    for f in written:
        objects += documents(out / f)
    objects += rendered(out)
    kinds = {o["kind"] for o in objects}
    assert {"Namespace", "Service", "StatefulSet", "PodDisruptionBudget", "Deployment"} <= kinds
    for version in (OLDEST, NEWEST):
        for o in objects:
            kubernetes_validate.validate(o, version, strict=True)


def test_kustomize_makes_the_topology_and_secrets_every_pod_refers_to(project):
    out, _ = project
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl (with its kustomize) is not installed")
    objects = rendered(out)
    by_kind = {}
    for o in objects:
        by_kind.setdefault(o["kind"], {})[o["metadata"]["name"]] = o
        if o["kind"] != "Namespace":
            assert o["metadata"]["namespace"] == "kms-test", o["metadata"]
    configmaps, secrets = by_kind["ConfigMap"], by_kind["Secret"]
    topology_text = (out / "topology.toml").read_text()
    workloads = list(by_kind["StatefulSet"].values()) + list(by_kind["Deployment"].values())
    assert len(workloads) == 3
    for w in workloads:
        pod = w["spec"]["template"]["spec"]
        for v in pod["volumes"]:
            if "configMap" in v:
                cm = configmaps[v["configMap"]["name"]]
                assert cm["data"]["topology.toml"].strip() == topology_text.strip()
                keys = cm["data"]
            else:
                keys = secrets[v["secret"]["secretName"]]["data"]
            for item in v.get("configMap", v.get("secret"))["items"]:
                assert item["key"] in keys, item
        for e in pod["containers"][0].get("env", []):
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["key"] in secrets[ref["name"]]["data"], e


def test_names_ports_and_addresses_agree_with_the_topology(project):
    out, _ = project
    topology = tomllib.loads((out / "topology.toml").read_text())
    objects = []
    for f in documents(out / "kustomization.yaml")[0]["resources"]:
        objects += documents(out / f)
    services = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Service"}
    sets = {o["spec"]["serviceName"]: o for o in objects if o["kind"] == "StatefulSet"}
    for region in topology["regions"]:
        for node in region["nodes"]:
            for addr, listen, port_name in ((node["advertise"], node["listen"], "grpc"),
                                            (node["aws_advertise"], node["aws_listen"], "aws")):
                host, port = addr.rsplit(":", 1)
                pod, service, namespace, rest = host.split(".", 3)
                assert (namespace, rest) == ("kms-test", "svc.cluster.local"), addr
                svc = services[service]
                assert svc["spec"]["clusterIP"] == "None" and svc["spec"]["publishNotReadyAddresses"]
                [svc_port] = [p for p in svc["spec"]["ports"] if p["port"] == int(port)]
                assert svc_port["targetPort"] == port_name
                sts = sets[service]
                ordinal = int(pod.removeprefix(sts["metadata"]["name"] + "-"))
                start = sts["spec"]["ordinals"]["start"]
                assert start <= ordinal < start + sts["spec"]["replicas"]
                assert ordinal == node["id"]
                container = sts["spec"]["template"]["spec"]["containers"][0]
                [c_port] = [p for p in container["ports"] if p["name"] == port_name]
                assert c_port["containerPort"] == int(listen.rsplit(":", 1)[1])
                assert container["args"][container["args"].index("--region") + 1] == region["name"]
                labels = sts["spec"]["template"]["metadata"]["labels"]
                assert all(labels[k] == v for k, v in svc["spec"]["selector"].items())
    gateway = services["kms-gateway"]
    assert gateway["spec"]["ports"][0]["port"] == int(topology["endpoint"]["listen"].rsplit(":", 1)[1])


def test_the_committed_manifests_are_what_the_command_writes_for_the_default_topology(tmp_path):
    out = tmp_path / "default"
    deploy(out)
    written = sorted(p.name for p in out.glob("*.yaml"))
    committed = sorted(p.name for p in COMMITTED.glob("*.yaml"))
    assert written == committed
    for name in written:
        assert (out / name).read_text() == (COMMITTED / name).read_text(), (
            f"deploy/kubernetes/{name} differs: regenerate it with "
            "`kmsim deploy kubernetes --out deploy/kubernetes`")
    # What the committed directory must never hold, and what it ignores.
    ignored = (COMMITTED / ".gitignore").read_text().split()
    assert "topology.toml" in ignored and "keys/" in ignored
    for name in committed:
        text = (COMMITTED / name).read_text()
        assert "PRIVATE KEY" not in text and "secret_access_key" not in text
