"""The pods of `kmsim deploy kubernetes` run as their manifests say, without Kubernetes: the
objects `kubectl kustomize` renders for one Region and the gateway are started as Docker
containers the way a kubelet would start them. The ConfigMap's and Secrets' data become files at
their items' paths (Secret files 0440, group fsGroup), `subPath` mounts become single-file
mounts, the environment is resolved (`fieldRef: metadata.name`, `secretKeyRef`, `$(VAR)` in the
arguments), the containers run with the securityContext's user and group, a read-only root file
system, no capabilities and no privilege escalation, the data volume is a directory owned by
fsGroup (a PersistentVolumeClaim), and each StatefulSet pod answers on a Docker network of this
test's own at the DNS name the headless Service gives it. Every node must pass its readiness
probe (the manifest's path and port) and a key must be used through the gateway.

What it shows that no schema does: a pod that knows only its name finds its node
(`--hostname`), reads every file the topology names at the path the Secret puts it, runs as
non-root on a read-only root, and its peers reach and verify it by its Kubernetes DNS name.
What it does not: kube-proxy, the kubelet's probes, PodDisruptionBudgets, volumes' provisioning.

Skipped where Docker or kubectl is missing. The binary is $KMSIM_BIN (as in conftest.py).
"""

import base64
import os
import pathlib
import re
import shutil
import socket
import subprocess
import urllib.request

import boto3
import botocore.config
import pytest
import yaml

from conftest import kmsim_bin, wait_for

REGION = "us-east-1"
TIMEOUT = 120


def docker(*args, check=True):
    run = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 or not check, f"docker {' '.join(args)}: {run.stderr}"
    return run


def docker_or_skip():
    if shutil.which("docker") is None or docker("version", check=False).returncode != 0:
        pytest.skip("no Docker engine answers")
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl (for kustomize) is not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Pods:
    """Starts pod specs as containers; removes every container and the network it made."""

    def __init__(self, cluster: str, root: pathlib.Path, objects: list[dict]):
        self.cluster = cluster
        self.root = root
        self.network = f"{cluster}-net"
        self.by_kind = {}
        for o in objects:
            self.by_kind.setdefault(o["kind"], {})[o["metadata"]["name"]] = o
        docker("network", "create", "--label", f"io.kmsim.cluster={cluster}", self.network)

    def close(self):
        ids = docker("ps", "-aq", "--filter", f"label=io.kmsim.cluster={self.cluster}").stdout.split()
        if ids:
            docker("rm", "-f", *ids, check=False)
        docker("network", "rm", self.network, check=False)

    def data(self, kind: str, name: str) -> dict[str, bytes]:
        obj = self.by_kind[kind][name]
        if kind == "Secret":
            return {k: base64.b64decode(v) for k, v in obj.get("data", {}).items()}
        return {k: v.encode() for k, v in obj.get("data", {}).items()}

    def start(self, pod: str, template: dict, *, aliases=(), publish=None) -> str:
        spec = template["spec"]
        [c] = spec["containers"]
        security = spec["securityContext"]
        uid, gid, fs_group = security["runAsUser"], security["runAsGroup"], security["fsGroup"]
        assert security["runAsNonRoot"] and uid != 0
        files = self.root / pod
        mounts = []
        for v in spec["volumes"]:
            source = v.get("configMap") or v.get("secret")
            kind = "ConfigMap" if "configMap" in v else "Secret"
            name = source.get("name") or source["secretName"]
            data = self.data(kind, name)
            mode = source.get("defaultMode", 0o644)
            vdir = files / v["name"]
            for item in source["items"]:
                f = vdir / item["path"]
                f.parent.mkdir(parents=True, exist_ok=True)
                f.write_bytes(data[item["key"]])
                # As the kubelet does for a Secret under fsGroup: group-owned, group-readable.
                os.chown(f, 0, fs_group)
                os.chmod(f, mode | 0o040)
            for m in c["volumeMounts"]:
                if m["name"] != v["name"]:
                    continue
                src = vdir / m["subPath"] if "subPath" in m else vdir
                mounts += ["--mount", f"type=bind,source={src},target={m['mountPath']},readonly"]
        for m in c["volumeMounts"]:
            if m["name"] == "data":
                # A fresh PersistentVolumeClaim: owned by root, the group fsGroup, writable by it.
                d = files / "data"
                d.mkdir(parents=True)
                os.chown(d, 0, fs_group)
                os.chmod(d, 0o2770)
                mounts += ["--mount", f"type=bind,source={d},target={m['mountPath']}"]
        env = {}
        for e in c.get("env", []):
            if "value" in e:
                env[e["name"]] = e["value"]
            elif "fieldRef" in e["valueFrom"]:
                assert e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
                env[e["name"]] = pod
            else:
                ref = e["valueFrom"]["secretKeyRef"]
                env[e["name"]] = self.data("Secret", ref["name"])[ref["key"]].decode().strip()
        args = [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], a) for a in c["args"]]
        csec = c["securityContext"]
        run = ["run", "-d", "--name", pod, "--hostname", pod, "--network", self.network,
               "--label", f"io.kmsim.cluster={self.cluster}", "--user", f"{uid}:{gid}",
               "--group-add", str(fs_group), "--security-opt", "no-new-privileges"]
        if csec["readOnlyRootFilesystem"]:
            run.append("--read-only")
        if "ALL" in csec["capabilities"]["drop"]:
            run += ["--cap-drop", "ALL"]
        for a in aliases:
            run += ["--network-alias", a]
        if publish:
            run += ["-p", publish]
        for k, v in env.items():
            run += ["-e", f"{k}={v}"]
        docker(*run, *mounts, c["image"], *args)
        return pod


def test_the_manifests_pods_start_as_written_and_serve_through_the_gateway(tmp_path):
    docker_or_skip()
    exe = kmsim_bin()
    assert os.path.exists(exe), f"kmsim binary not found at {exe}: build it or set KMSIM_BIN"
    built = subprocess.run([exe, "image", "build", "--binary", exe], capture_output=True,
                           text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    cluster, namespace = f"kpod{os.getpid()}", "kmsim-pods"
    out = tmp_path / "manifests"
    made = subprocess.run([exe, "deploy", "kubernetes", "--out", str(out), "--regions", REGION,
                           "--nodes", "3", "--name", cluster, "--namespace", namespace],
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    rendered = subprocess.run(["kubectl", "kustomize", str(out)], capture_output=True,
                              text=True, timeout=60)
    assert rendered.returncode == 0, rendered.stderr
    objects = [o for o in yaml.safe_load_all(rendered.stdout) if o]
    pods = Pods(cluster, tmp_path / "pods", objects)
    try:
        sts = pods.by_kind["StatefulSet"][f"{cluster}-{REGION}"]
        start, replicas = sts["spec"]["ordinals"]["start"], sts["spec"]["replicas"]
        peers = sts["spec"]["serviceName"]
        names = []
        for ordinal in range(start, start + replicas):
            pod = f"{sts['metadata']['name']}-{ordinal}"
            fqdn = f"{pod}.{peers}.{namespace}.svc.cluster.local"
            names.append(pods.start(pod, sts["spec"]["template"], aliases=[fqdn]))
        [container] = sts["spec"]["template"]["spec"]["containers"]
        probe = container["readinessProbe"]["httpGet"]
        [port] = [p["containerPort"] for p in container["ports"] if p["name"] == probe["port"]]
        url = f"{probe['scheme'].lower()}://127.0.0.1:{port}{probe['path']}"

        def ready(pod):
            return docker("exec", pod, "/kmsim", "health", "--url", url,
                          check=False).returncode == 0

        for pod in names:
            wait_for(f"{pod} ready", lambda: ready(pod), timeout=TIMEOUT)
        logs = docker("logs", names[0]).stderr
        assert "found this node by its hostname" in logs, logs[-2000:]

        gw = pods.by_kind["Deployment"][f"{cluster}-gateway"]
        [gc] = gw["spec"]["template"]["spec"]["containers"]
        [gw_port] = [p["containerPort"] for p in gc["ports"]]
        host_port = free_port()
        pods.start(f"{cluster}-gateway-0", gw["spec"]["template"],
                   publish=f"127.0.0.1:{host_port}:{gw_port}")
        endpoint = f"http://127.0.0.1:{host_port}"

        def gateway_ready():
            try:
                return urllib.request.urlopen(f"{endpoint}/readyz", timeout=2).status == 200
            except OSError:
                return False

        wait_for("the gateway ready", gateway_ready, timeout=60)
        kms = boto3.client("kms", region_name=REGION, endpoint_url=endpoint,
                           aws_access_key_id="test", aws_secret_access_key="test",
                           config=botocore.config.Config(retries={"mode": "standard"}))
        key = kms.create_key(Description="in pods")["KeyMetadata"]["KeyId"]
        blob = kms.encrypt(KeyId=key, Plaintext=b"pods")["CiphertextBlob"]
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"pods"
        # The nodes ran as the manifest's user on a read-only root.
        user = docker("inspect", "-f", "{{.Config.User}} {{.HostConfig.ReadonlyRootfs}}",
                      names[0]).stdout.split()
        assert user == ["65532:65532", "true"], user
    finally:
        pods.close()
