//! The manifests read back as YAML (serde_yaml, not our writer) and checked against the
//! topology they were written for: every address a node advertises is a pod of a StatefulSet
//! behind a Service of that name and port, every Secret and file a pod reads exists.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::*;
use crate::container::compose::{self, ComposeSpec};
use crate::container::image::CLUSTER_DIR;

fn default_regions() -> Vec<(String, usize)> {
    ["us-east-1", "eu-west-1", "ap-southeast-2"]
        .iter()
        .map(|r| (r.to_string(), 3))
        .collect()
}

/// Every object of the written files, parsed by a YAML parser: (file, object).
fn read_objects(dir: &Path, files: &[PathBuf]) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let v = Value::deserialize(doc).unwrap();
            let name = f.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            out.push((name, v));
        }
    }
    out
}

/// The objects of one kind, by name.
fn of_kind<'a>(objects: &'a [(String, Value)], kind: &str) -> BTreeMap<String, &'a Value> {
    objects
        .iter()
        .filter(|(_, o)| o["kind"] == kind)
        .map(|(_, o)| (o["metadata"]["name"].as_str().unwrap().to_string(), o))
        .collect()
}

/// The topology as written (paths relative to its directory, as every pod sees them).
fn written_topology(dir: &Path) -> Topology {
    Topology::parse(&std::fs::read_to_string(dir.join("topology.toml")).unwrap()).unwrap()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

#[test]
fn the_committed_manifests_are_what_the_command_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = KubernetesSpec::default_for_version();
    let p = write_project(tmp.path(), &default_regions(), &spec).unwrap();
    assert!(p.created_secrets);
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes");
    // `KMSIM_BLESS=1 cargo test -p kmsim-sim committed_manifests` rewrites them.
    let bless = std::env::var_os("KMSIM_BLESS").is_some();
    let mut names = Vec::new();
    for f in &p.files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let written = std::fs::read_to_string(f).unwrap();
        if bless {
            std::fs::create_dir_all(&committed).unwrap();
            std::fs::write(committed.join(&name), &written).unwrap();
        }
        let there = std::fs::read_to_string(committed.join(&name)).unwrap_or_default();
        assert!(
            written == there,
            "deploy/kubernetes/{name} differs from what `kmsim deploy kubernetes` writes; \
             regenerate with `kmsim deploy kubernetes --out deploy/kubernetes` \
             (or KMSIM_BLESS=1 cargo test -p kmsim-sim committed_manifests)"
        );
        names.push(name);
    }
    // No manifest is committed that the command no longer writes.
    let mut yaml_files: Vec<String> = std::fs::read_dir(&committed)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    yaml_files.sort();
    names.sort();
    assert_eq!(yaml_files, names);
    // Written again over the same directory: the secrets are kept, the files are the same.
    let again = write_project(tmp.path(), &default_regions(), &spec).unwrap();
    assert!(!again.created_secrets);
    for f in &again.files {
        let name = f.file_name().unwrap();
        assert_eq!(
            std::fs::read_to_string(f).unwrap(),
            std::fs::read_to_string(committed.join(name)).unwrap()
        );
    }
}

#[test]
fn every_advertised_address_is_a_pod_of_a_statefulset_behind_a_service_of_its_name_and_port() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = KubernetesSpec {
        names: PodNames {
            cluster: "kms".into(),
            namespace: "sim-ns".into(),
            cluster_domain: "k8s.example".into(),
        },
        image: "registry.example/kmsim:1".into(),
    };
    let regions = [("us-east-1".to_string(), 3), ("eu-west-1".to_string(), 5)];
    let p = write_project(tmp.path(), &regions, &spec).unwrap();
    let objects = read_objects(tmp.path(), &p.files);
    let services = of_kind(&objects, "Service");
    let sets = of_kind(&objects, "StatefulSet");
    let pdbs = of_kind(&objects, "PodDisruptionBudget");
    let topo = written_topology(tmp.path());
    for (_, o) in &objects {
        if o["kind"] != "Kustomization" && o["kind"] != "Namespace" {
            assert_eq!(o["metadata"]["namespace"], "sim-ns", "{o}");
        }
    }
    let mut pods_seen = 0;
    for r in &topo.regions {
        for n in &r.nodes {
            for (addr, listen, port_name) in [
                (n.advertise_addr(), n.listen.port(), "grpc"),
                (
                    n.aws_advertise_addr().unwrap(),
                    n.aws_listen.unwrap().port(),
                    "aws",
                ),
            ] {
                // <pod>.<service>.<namespace>.svc.<domain>:<port>
                let (host, port) = addr.rsplit_once(':').unwrap();
                let port: u64 = port.parse().unwrap();
                let labels: Vec<&str> = host.splitn(4, '.').collect();
                let [pod, service, ns, rest] = labels[..] else {
                    panic!("{addr} is not a pod's DNS name")
                };
                assert_eq!(ns, "sim-ns");
                assert_eq!(rest, "svc.k8s.example");
                let svc = services
                    .get(service)
                    .unwrap_or_else(|| panic!("no Service {service}"));
                assert_eq!(svc["spec"]["clusterIP"], "None", "{service} is headless");
                assert_eq!(svc["spec"]["publishNotReadyAddresses"], true);
                let svc_port = svc["spec"]["ports"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|p| p["port"] == port)
                    .unwrap_or_else(|| panic!("{service} has no port {port}"));
                assert_eq!(svc_port["targetPort"], port_name);
                // The StatefulSet governed by that Service, whose pods it selects.
                let (sts_name, sts) = sets
                    .iter()
                    .find(|(_, s)| s["spec"]["serviceName"] == service)
                    .unwrap_or_else(|| panic!("no StatefulSet behind {service}"));
                let template = &sts["spec"]["template"];
                for (k, v) in svc["spec"]["selector"].as_object().unwrap() {
                    assert_eq!(&template["metadata"]["labels"][k], v, "{k}");
                }
                assert_eq!(
                    sts["spec"]["selector"]["matchLabels"],
                    svc["spec"]["selector"]
                );
                let ordinal: u64 = pod
                    .strip_prefix(&format!("{sts_name}-"))
                    .unwrap_or_else(|| panic!("{pod} is not a pod of {sts_name}"))
                    .parse()
                    .unwrap();
                let start = sts["spec"]["ordinals"]["start"].as_u64().unwrap();
                let replicas = sts["spec"]["replicas"].as_u64().unwrap();
                assert!((start..start + replicas).contains(&ordinal), "{pod}");
                assert_eq!(ordinal, n.id, "the ordinal is the Raft id");
                // The container listens where the topology says, under the Service's port name.
                let c = &template["spec"]["containers"][0];
                let cport = c["ports"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|p| p["name"] == port_name)
                    .unwrap();
                assert_eq!(cport["containerPort"], listen);
                // And the pod finds its own entry from its name alone.
                let args: Vec<&str> = c["args"].as_array().unwrap().iter().map(s).collect();
                let at = |flag: &str| args[args.iter().position(|a| *a == flag).unwrap() + 1];
                assert_eq!(at("--region"), r.name);
                assert_eq!(at("--hostname"), "$(KMSIM_POD_NAME)");
                let env = c["env"].as_array().unwrap();
                assert!(env.iter().any(|e| e["name"] == "KMSIM_POD_NAME"
                    && e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"));
                let topo_r = topo.region(at("--region")).unwrap();
                assert_eq!(topo_r.node_by_host(pod).map(|n| n.id), Some(n.id));
                pods_seen += 1;
            }
        }
        // One StatefulSet per Region, every member started at once, a majority kept.
        let sts = sets[&spec.names.statefulset(&r.name)];
        assert_eq!(sts["spec"]["podManagementPolicy"], "Parallel");
        assert_eq!(sts["spec"]["replicas"], r.nodes.len());
        let pdb = pdbs[&spec.names.statefulset(&r.name)];
        assert_eq!(pdb["spec"]["minAvailable"], r.nodes.len() / 2 + 1);
        assert_eq!(pdb["spec"]["selector"], sts["spec"]["selector"]);
        // The client Service selects the same pods.
        let client = services[&spec.names.client_service(&r.name)];
        assert_eq!(
            client["spec"]["selector"],
            sts["spec"]["selector"]["matchLabels"]
        );
        let c = &sts["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["image"], "registry.example/kmsim:1");
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
        assert_eq!(c["readinessProbe"]["httpGet"]["port"], "aws");
        assert_eq!(c["readinessProbe"]["httpGet"]["scheme"], "HTTP");
        // The data volume is mounted where the topology keeps this Region's nodes' data.
        let data_mount = c["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "data")
            .unwrap();
        for n in &r.nodes {
            let dir = format!("{CLUSTER_DIR}/{}", n.data_dir.display());
            assert!(dir.starts_with(&format!("{}/", s(&data_mount["mountPath"]))));
        }
        assert_eq!(
            sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"],
            "data"
        );
    }
    assert_eq!(pods_seen, 2 * 8);
    // The gateway: its Service and container on the topology's endpoint port.
    let gw_port = topo.endpoint.as_ref().unwrap().listen.port();
    let gw = services[&spec.names.gateway()];
    assert_eq!(gw["spec"]["ports"][0]["port"], gw_port);
    let deployments = of_kind(&objects, "Deployment");
    let dep = deployments[&spec.names.gateway()];
    let c = &dep["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["ports"][0]["containerPort"], gw_port);
    for (k, v) in gw["spec"]["selector"].as_object().unwrap() {
        assert_eq!(&dep["spec"]["template"]["metadata"]["labels"][k], v);
    }
}

/// Every Secret and ConfigMap a pod refers to is generated by the kustomization with the
/// keys it names, from files that exist; every file the topology makes a process read is
/// mounted at its path; no key file is mounted that no process reads.
#[test]
fn every_secret_and_file_a_pod_reads_is_generated_and_mounted_where_the_topology_says() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = KubernetesSpec::default_for_version();
    let p = write_project(tmp.path(), &default_regions(), &spec).unwrap();
    let objects = read_objects(tmp.path(), &p.files);
    let kustomization = objects
        .iter()
        .find(|(_, o)| o["kind"] == "Kustomization")
        .map(|(_, o)| o)
        .unwrap();
    // Generated objects: name -> (kind, keys).
    let mut generated: BTreeMap<String, (&str, Vec<String>)> = BTreeMap::new();
    for (list, kind) in [
        ("configMapGenerator", "ConfigMap"),
        ("secretGenerator", "Secret"),
    ] {
        for g in kustomization[list].as_array().into_iter().flatten() {
            let mut keys = Vec::new();
            for f in g["files"].as_array().unwrap() {
                let f = s(f);
                let (key, file) = f.split_once('=').unwrap_or((f, f));
                assert!(tmp.path().join(file).is_file(), "{file} is missing");
                keys.push(key.to_string());
            }
            generated.insert(s(&g["name"]).to_string(), (kind, keys));
        }
    }
    // The resources are exactly the files written besides the kustomization.
    let resources: Vec<&str> = kustomization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(s)
        .collect();
    let written: Vec<String> = p
        .files
        .iter()
        .skip(1)
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(resources, written);
    let topo = written_topology(tmp.path());
    let tls = topo.tls.as_ref().unwrap();
    let mut pods = 0;
    for (_, o) in &objects {
        let Some(pod) = o["spec"]["template"]["spec"].as_object() else {
            continue;
        };
        pods += 1;
        let c = &pod["containers"][0];
        // Every path the pod can open, from its volumes and mounts.
        let mut readable: Vec<String> = Vec::new();
        for v in pod["volumes"].as_array().unwrap() {
            let (name, kind, source) = if let Some(cm) = v["configMap"].as_object() {
                (s(&cm["name"]), "ConfigMap", cm)
            } else {
                let sec = v["secret"].as_object().unwrap();
                (s(&sec["secretName"]), "Secret", sec)
            };
            let (gen_kind, keys) = generated
                .get(name)
                .unwrap_or_else(|| panic!("{name} is not generated"));
            assert_eq!(*gen_kind, kind);
            let mount = c["volumeMounts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["name"] == v["name"])
                .unwrap();
            for item in source["items"].as_array().unwrap() {
                assert!(keys.contains(&s(&item["key"]).to_string()), "{item}");
                let path = match mount["subPath"].as_str() {
                    Some(sub) => {
                        assert_eq!(sub, s(&item["path"]));
                        s(&mount["mountPath"]).to_string()
                    }
                    None => format!("{}/{}", s(&mount["mountPath"]), s(&item["path"])),
                };
                readable.push(path);
            }
        }
        for e in c["env"].as_array().unwrap() {
            if let Some(r) = e["valueFrom"]["secretKeyRef"].as_object() {
                let (_, keys) = &generated[s(&r["name"])];
                assert!(keys.contains(&s(&r["key"]).to_string()), "{e}");
            }
        }
        let in_pod = |f: &Path| format!("{CLUSTER_DIR}/{}", f.display());
        assert!(readable.contains(&format!("{CLUSTER_DIR}/topology.toml")));
        let mut wanted: Vec<String> = match s(&c["args"][0]) {
            "gateway" => project::gateway_files(tls, topo.sts.as_ref())
                .iter()
                .map(|f| in_pod(f))
                .collect(),
            "node" => {
                let region = topo.region(s(&c["args"][4])).unwrap();
                // The domain key comes as a variable; every other file is mounted.
                let env = c["env"].as_array().unwrap();
                assert!(env.iter().any(|e| e["name"] == region.domain_key_env()));
                region
                    .nodes
                    .iter()
                    .flat_map(|n| project::node_files(tls, topo.sts.as_ref(), region, n.id))
                    .filter(|f| *f != region.domain_key_file)
                    .map(|f| in_pod(&f))
                    .collect()
            }
            other => panic!("unexpected command {other}"),
        };
        wanted.push(format!("{CLUSTER_DIR}/topology.toml"));
        wanted.sort();
        wanted.dedup();
        readable.sort();
        assert_eq!(readable, wanted);
    }
    assert_eq!(pods, 4, "three StatefulSets and the gateway");
}

#[test]
fn no_secret_is_in_a_manifest_and_the_ca_and_anchor_keys_reach_no_pod() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write_project(
        tmp.path(),
        &default_regions(),
        &KubernetesSpec::default_for_version(),
    )
    .unwrap();
    let domain_key = std::fs::read_to_string(tmp.path().join("keys/us-east-1.key")).unwrap();
    for f in &p.files {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(!text.contains("PRIVATE KEY"), "{}", f.display());
        assert!(!text.contains("secret_access_key"), "{}", f.display());
        assert!(!text.contains(domain_key.trim()), "{}", f.display());
        assert!(!text.contains("ca.key"), "{}", f.display());
        assert!(!text.contains("trust-anchor"), "{}", f.display());
    }
}

#[test]
fn a_topology_with_real_credentials_goes_into_a_secret() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = KubernetesSpec::default_for_version();
    let regions = [("us-east-1".to_string(), 1)];
    let p = write_project(tmp.path(), &regions, &spec).unwrap();
    let objects = read_objects(tmp.path(), &p.files);
    let k = &objects[0].1;
    assert_eq!(k["configMapGenerator"][0]["name"], "kmsim-topology");
    // Someone gives the cluster real credentials: the topology becomes a secret.
    let path = tmp.path().join("topology.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace(
            "secret_access_key = \"test\"",
            "secret_access_key = \"not-public\"",
        ),
    )
    .unwrap();
    let p = write_project(tmp.path(), &regions, &spec).unwrap();
    let objects = read_objects(tmp.path(), &p.files);
    let k = &objects[0].1;
    assert!(k.get("configMapGenerator").is_none(), "{k}");
    assert_eq!(k["secretGenerator"][0]["name"], "kmsim-topology");
    let sets = of_kind(&objects, "StatefulSet");
    let volume = &sets["kmsim-us-east-1"]["spec"]["template"]["spec"]["volumes"][0];
    assert_eq!(volume["secret"]["secretName"], "kmsim-topology");
    // One node: the budget still keeps it (a majority of one).
    let pdbs = of_kind(&objects, "PodDisruptionBudget");
    assert_eq!(pdbs["kmsim-us-east-1"]["spec"]["minAvailable"], 1);
}

#[test]
fn names_are_checked_and_a_topology_written_for_other_names_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let regions = [("ap-southeast-2".to_string(), 3)];
    let with = |f: &dyn Fn(&mut PodNames)| {
        let mut spec = KubernetesSpec::default_for_version();
        f(&mut spec.names);
        spec
    };
    for bad in [
        with(&|n| n.cluster = "a".repeat(40)),
        with(&|n| n.cluster = "Kmsim".into()),
        with(&|n| n.namespace = "a_b".into()),
        with(&|n| n.namespace = "-a".into()),
        with(&|n| n.cluster_domain = "cluster..local".into()),
    ] {
        let err = write_project(tmp.path(), &regions, &bad).unwrap_err();
        assert!(!tmp.path().join("topology.toml").exists(), "{err}");
    }
    write_project(tmp.path(), &regions, &KubernetesSpec::default_for_version()).unwrap();
    let other = with(&|n| n.namespace = "other".into());
    let err = write_project(tmp.path(), &regions, &other).unwrap_err();
    assert!(err.to_string().contains("other names"), "{err}");
    // A compose project's topology is not a Kubernetes one, nor the other way round.
    let err = compose::compose_file(
        &written_topology(tmp.path()),
        &ComposeSpec::default_for_version(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("other names"), "{err}");
    let c = tempfile::tempdir().unwrap();
    compose::write_project(c.path(), &regions, &ComposeSpec::default_for_version()).unwrap();
    let err =
        write_project(c.path(), &regions, &KubernetesSpec::default_for_version()).unwrap_err();
    assert!(err.to_string().contains("other names"), "{err}");
}

/// A peer dials a node by the DNS name the topology advertises, and verifies the node's
/// certificate for that name: a TLS handshake, in memory, with the cluster's own files.
#[tokio::test]
async fn a_node_certificate_is_valid_for_the_dns_name_peers_dial() {
    use kmsim_node::tls::{https_acceptor, https_client_config, KeyedCert};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tmp = tempfile::tempdir().unwrap();
    let spec = KubernetesSpec::default_for_version();
    write_project(tmp.path(), &[("eu-west-1".to_string(), 3)], &spec).unwrap();
    let tls_dir = tmp.path().join("keys/tls");
    let ca = std::fs::read(tls_dir.join("ca.crt")).unwrap();
    let handshake = |node: u64, name: String| {
        let cert = KeyedCert {
            cert_pem: std::fs::read(tls_dir.join(format!("node-eu-west-1-{node}.crt"))).unwrap(),
            key_pem: std::fs::read(tls_dir.join(format!("node-eu-west-1-{node}.key"))).unwrap(),
        };
        let acceptor = https_acceptor(&cert).unwrap();
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(
            https_client_config(&ca).unwrap(),
        ));
        async move {
            let (client, server) = tokio::io::duplex(64 * 1024);
            let server = tokio::spawn(async move {
                let mut s = acceptor.accept(server).await?;
                s.write_all(b"ok").await?;
                s.shutdown().await
            });
            let name = rustls_pki_types::ServerName::try_from(name).unwrap();
            let dialed = async {
                let mut c = connector.connect(name, client).await?;
                let mut buf = Vec::new();
                c.read_to_end(&mut buf).await?;
                Ok::<_, std::io::Error>(buf)
            }
            .await;
            server.abort();
            dialed
        }
    };
    let names = &spec.names;
    for id in 1..=3 {
        let got = handshake(id, names.node_host("eu-west-1", id))
            .await
            .unwrap();
        assert_eq!(got, b"ok");
    }
    // Another node's name is refused: a certificate names its own node only.
    let err = handshake(1, names.node_host("eu-west-1", 2))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");
}
