//! Forward security: the shared-key handshake refused with a clear reason on both sides when
//! the keys differ, a server that cannot prove the key is refused by the client, the user/
//! password check, and delivery over TLS with client certificates (mutual TLS).

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use islet_sink::forward::{ForwardConfig, Forwarder, Receiver, ServerConfig, TlsClient};

fn records(n: usize) -> Vec<u8> {
    let mut b = Vec::new();
    for i in 0..n {
        let _ = writeln!(
            b,
            r#"{{"timestamp":"2024-01-01T00:00:00.000000+0000","event_type":"flow","n":{i},"islet":{{"seq":{},"prev":"{}"}}}}"#,
            i + 1,
            "00".repeat(32)
        );
    }
    b
}

fn counting_receiver(
    cfg: ServerConfig,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> (Receiver, Arc<Mutex<usize>>) {
    let n: Arc<Mutex<usize>> = Arc::default();
    let c = n.clone();
    let r = Receiver::start(
        "127.0.0.1:0",
        cfg,
        tls,
        Arc::new(move |b| {
            *c.lock().expect("test setup") += b.events.len();
            true
        }),
    )
    .expect("receiver");
    (r, n)
}

fn client(port: u16, f: impl FnOnce(&mut ForwardConfig)) -> Forwarder {
    let mut cfg = ForwardConfig {
        servers: vec![format!("127.0.0.1:{port}")],
        self_hostname: "sensor".into(),
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(50),
        shutdown_timeout: Duration::from_millis(300),
        ..ForwardConfig::default()
    };
    f(&mut cfg);
    Forwarder::start(cfg, None, "sensor").expect("test setup")
}

fn wait(mut ok: impl FnMut() -> bool) {
    for _ in 0..500 {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_wrong_shared_key_is_refused_on_both_sides() {
    let (r, got) = counting_receiver(
        ServerConfig {
            shared_key: Some("right".into()),
            self_hostname: "collector".into(),
            ..ServerConfig::default()
        },
        None,
    );
    let f = client(r.local_addr().port(), |c| {
        c.shared_key = Some("wrong".into())
    });
    f.offer(&records(10));
    let st = f.stats();
    wait(|| r.stats.closed("handshake") > 0 && st.last_error.lock().unwrap().is_some());
    assert!(r.stats.closed("handshake") >= 1);
    let err = st.last_error.lock().unwrap().clone().unwrap();
    assert!(
        err.contains("refused the handshake: shared_key mismatch"),
        "{err}"
    );
    assert_eq!(*got.lock().unwrap(), 0);
    let rep = f.close();
    assert_eq!(rep.delivered, 0);

    // The right key: delivered.
    let f = client(r.local_addr().port(), |c| {
        c.shared_key = Some("right".into())
    });
    f.offer(&records(10));
    let rep = f.close();
    assert_eq!(rep.delivered, 10);
    assert_eq!(*got.lock().unwrap(), 10);
}

#[test]
fn a_server_that_cannot_prove_the_key_is_refused_by_the_client() {
    // A fake server: HELO, then a PONG that claims success with a digest of another key.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().take(3) {
            let Ok(mut s) = s else { continue };
            let mut helo = vec![0x92];
            rmp::encode::write_str(&mut helo, "HELO").unwrap();
            rmp::encode::write_map_len(&mut helo, 3).unwrap();
            for (k, v) in [("nonce", &b"n0nce"[..]), ("auth", b"")] {
                rmp::encode::write_str(&mut helo, k).unwrap();
                rmp::encode::write_bin(&mut helo, v).unwrap();
            }
            rmp::encode::write_str(&mut helo, "keepalive").unwrap();
            rmp::encode::write_bool(&mut helo, true).unwrap();
            let _ = s.write_all(&helo);
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let mut pong = vec![0x95];
            rmp::encode::write_str(&mut pong, "PONG").unwrap();
            rmp::encode::write_bool(&mut pong, true).unwrap();
            rmp::encode::write_str(&mut pong, "").unwrap();
            rmp::encode::write_str(&mut pong, "impostor").unwrap();
            rmp::encode::write_str(&mut pong, &"ab".repeat(64)).unwrap();
            let _ = s.write_all(&pong);
            let _ = s.read(&mut buf);
        }
    });
    let f = client(port, |c| c.shared_key = Some("k".into()));
    f.offer(&records(1));
    let st = f.stats();
    wait(|| st.last_error.lock().unwrap().is_some());
    let err = st.last_error.lock().unwrap().clone().unwrap();
    assert!(err.contains("does not know the shared key"), "{err}");
    assert_eq!(f.close().delivered, 0);
}

#[test]
fn users_and_passwords_are_checked() {
    let (r, got) = counting_receiver(
        ServerConfig {
            shared_key: Some("k".into()),
            users: vec![("alice".into(), "pw".into())],
            ..ServerConfig::default()
        },
        None,
    );
    let port = r.local_addr().port();
    let f = client(port, |c| {
        c.shared_key = Some("k".into());
        c.username = Some("alice".into());
        c.password = Some("nope".into());
    });
    f.offer(&records(1));
    let st = f.stats();
    wait(|| st.last_error.lock().unwrap().is_some());
    let err = st.last_error.lock().unwrap().clone().unwrap();
    assert!(err.contains("username/password mismatch"), "{err}");
    f.close();
    let f = client(port, |c| {
        c.shared_key = Some("k".into());
        c.username = Some("alice".into());
        c.password = Some("pw".into());
    });
    f.offer(&records(3));
    assert_eq!(f.close().delivered, 3);
    assert_eq!(*got.lock().unwrap(), 3);
}

#[test]
fn delivery_over_mutual_tls() {
    let dir = std::env::temp_dir().join(format!("islet-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A CA, a server certificate for localhost, a client certificate.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "islet test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf = |name: &str| {
        let k = rcgen::KeyPair::generate().unwrap();
        let p = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
        let c = p.signed_by(&k, &ca, &ca_key).unwrap();
        (c, k)
    };
    let (srv, srv_key) = leaf("localhost");
    let (cli, cli_key) = leaf("sensor-1");
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("client.pem"), cli.pem()).unwrap();
    std::fs::write(dir.join("client.key"), cli_key.serialize_pem()).unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let server_tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![srv.der().clone()],
            rustls_pki_types::PrivateKeyDer::try_from(srv_key.serialize_der()).unwrap(),
        )
        .unwrap();
    let (r, got) = counting_receiver(ServerConfig::default(), Some(Arc::new(server_tls)));
    let port = r.local_addr().port();
    let tls = |cert: bool| TlsClient {
        ca_file: Some(dir.join("ca.pem")),
        cert_file: cert.then(|| dir.join("client.pem")),
        key_file: cert.then(|| dir.join("client.key")),
        server_name: Some("localhost".into()),
    };
    // Without a client certificate the server refuses the TLS handshake.
    let f = client(port, |c| c.tls = Some(tls(false)));
    f.offer(&records(5));
    let st = f.stats();
    wait(|| st.last_error.lock().unwrap().is_some());
    assert_eq!(f.close().delivered, 0);
    // With one, everything arrives.
    let f = client(port, |c| c.tls = Some(tls(true)));
    f.offer(&records(500));
    let st = f.stats();
    let rep = f.close();
    assert_eq!(rep.delivered, 500, "{:?}", st.last_error.lock().unwrap());
    assert_eq!(*got.lock().unwrap(), 500);
    assert!(st.connects.load(Ordering::Relaxed) >= 1);
    let _ = std::fs::remove_dir_all(&dir);
}
