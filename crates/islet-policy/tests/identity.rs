//! Identities: a Kubernetes pod list as `kubectl get pods -A -o json` writes it, an address
//! reused by a new pod, derived identities for unknown addresses, and refused inventories.

use islet_policy::identity::{Identity, Inventory};
use islet_policy::time::parse_rfc3339;

const PODS: &str = r#"{
  "apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""},
  "items": [
    {"apiVersion": "v1", "kind": "Pod",
     "metadata": {"name": "web-7c9f-abcde", "namespace": "shop", "uid": "0b1c-1",
                  "labels": {"app": "web", "pod-template-hash": "7c9f"},
                  "creationTimestamp": "2024-05-01T10:00:00Z",
                  "deletionTimestamp": "2024-05-01T11:00:00Z"},
     "spec": {"serviceAccountName": "web", "containers": [{"name": "web", "image": "nginx:1.27"}]},
     "status": {"phase": "Running", "podIP": "10.244.1.7", "podIPs": [{"ip": "10.244.1.7"}, {"ip": "fd00::7"}],
                "containerStatuses": [{"name": "web", "imageID": "docker.io/library/nginx@sha256:0123"}]}},
    {"apiVersion": "v1", "kind": "Pod",
     "metadata": {"name": "db-0", "namespace": "shop", "uid": "0b1c-2", "labels": {"app": "db"},
                  "creationTimestamp": "2024-05-01T11:00:05Z"},
     "spec": {"containers": [{"name": "pg", "image": "postgres:16"}]},
     "status": {"podIP": "10.244.1.7"}},
    {"apiVersion": "v1", "kind": "Pod",
     "metadata": {"name": "kube-proxy-x", "namespace": "kube-system", "labels": {"k8s-app": "kube-proxy"}},
     "spec": {"hostNetwork": true},
     "status": {"podIP": "192.168.1.10"}}
  ]}"#;

#[test]
fn a_reused_address_maps_to_the_pod_of_the_flow_time() {
    let mut inv = Inventory::from_text("pods.json", PODS).expect("pods");
    inv.cluster
        .push(islet_policy::net::Cidr::parse("10.244.0.0/16").expect("cidr"));
    let ip = "10.244.1.7".parse().expect("ip");
    let at = |t: &str| parse_rfc3339(t).expect("time");
    let name = |id: Identity| inv.describe(id).to_string();
    assert_eq!(
        name(inv.resolve(ip, at("2024-05-01T10:30:00Z"))),
        "shop/web-7c9f-abcde"
    );
    assert_eq!(
        name(inv.resolve(ip, at("2024-05-01T11:30:00Z"))),
        "shop/db-0"
    );
    // Between the old pod's deletion and the new pod's creation the address is nobody's.
    assert_eq!(
        inv.resolve(ip, at("2024-05-01T11:00:02Z")),
        Identity::Cluster
    );
    assert_eq!(
        inv.resolve(ip, at("2024-05-01T09:00:00Z")),
        Identity::Cluster
    );
    let web = inv
        .workload(inv.resolve("fd00::7".parse().expect("ip"), at("2024-05-01T10:30:00Z")))
        .expect("v6");
    assert_eq!(web.service_account.as_deref(), Some("web"));
    assert_eq!(
        web.image.as_deref(),
        Some("docker.io/library/nginx@sha256:0123")
    );
    assert_eq!(web.pod_uid.as_deref(), Some("0b1c-1"));
    assert_eq!(web.labels.get("app").map(String::as_str), Some("web"));
    // The host-network pod does not claim its node's address.
    assert_eq!(
        inv.resolve("192.168.1.10".parse().expect("ip"), 0),
        Identity::World
    );
    assert_eq!(
        inv.resolve("8.8.8.8".parse().expect("ip"), 0),
        Identity::World
    );
    assert_eq!(
        inv.namespace_label("shop", "kubernetes.io/metadata.name"),
        Some("shop")
    );
}

#[test]
fn toml_inventories_and_their_errors() {
    let inv = Inventory::from_text(
        "inv.toml",
        "cluster_cidrs = [\"10.0.0.0/8\"]\nhost_cidrs = [\"192.168.1.10\"]\n[[workload]]\nname = \"esxi-1\"\nkind = \"host\"\nlabels = { role = \"hypervisor\" }\naddresses = [\"192.168.50.0/24\"]\n[[workload]]\nname = \"vc\"\nkind = \"vm\"\naddresses = [\"192.168.50.10\"]\n",
    )
    .expect("inventory");
    let r = |a: &str| {
        inv.describe(inv.resolve(a.parse().expect("ip"), 0))
            .to_string()
    };
    assert_eq!(r("192.168.50.10"), "vc", "an exact address before a prefix");
    assert_eq!(r("192.168.50.11"), "esxi-1");
    assert_eq!(r("192.168.1.10"), "host");
    assert_eq!(r("10.9.9.9"), "cluster");
    assert_eq!(r("1.1.1.1"), "world");
    let e = Inventory::from_text(
        "bad.toml",
        "[[workload]]\nname = \"a\"\nkind = \"pod\"\naddresses = [\"10.0.0.300\"]\n",
    )
    .expect_err("bad ip")
    .to_string();
    assert!(
        e.contains("bad.toml: workload 1 (\"a\")") && e.contains("10.0.0.300"),
        "{e}"
    );
    let e = Inventory::from_text(
        "bad.toml",
        "[[workload]]\nname = \"a\"\nkind = \"toaster\"\naddresses = []\n",
    )
    .expect_err("bad kind")
    .to_string();
    assert!(
        e.starts_with("bad.toml: line 3: unknown variant `toaster`"),
        "{e}"
    );
    let e = Inventory::from_text("bad.json", "{\"items\": [ {")
        .expect_err("syntax")
        .to_string();
    assert!(e.starts_with("bad.json: line "), "{e}");
}
