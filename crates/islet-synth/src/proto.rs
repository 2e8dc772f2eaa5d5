//! Real protocol bytes for scenario flows: TLS 1.2/1.3 handshake records with chosen SNIs and
//! ALPNs, SSH key-exchange packets. Built from the RFCs' wire formats; nothing is encrypted
//! (application data records carry filler), which is all a passive sensor can see anyway.

/// A TLS record of `ctype` around `body`.
fn record(ctype: u8, version: u16, body: &[u8]) -> Vec<u8> {
    let mut r = vec![ctype];
    r.extend_from_slice(&version.to_be_bytes());
    r.extend_from_slice(&(body.len() as u16).to_be_bytes());
    r.extend_from_slice(body);
    r
}

fn handshake(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut h = vec![ty, 0];
    h.extend_from_slice(&(body.len() as u16).to_be_bytes());
    h.extend_from_slice(body);
    h
}

fn ext(out: &mut Vec<u8>, ty: u16, data: &[u8]) {
    out.extend_from_slice(&ty.to_be_bytes());
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
}

fn u16_list(v: &[u16], len_bytes: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let n = v.len() * 2;
    if len_bytes == 1 {
        out.push(n as u8);
    } else {
        out.extend_from_slice(&(n as u16).to_be_bytes());
    }
    for x in v {
        out.extend_from_slice(&x.to_be_bytes());
    }
    out
}

/// A ClientHello record as a current browser sends it (TLS 1.3 capable unless `tls12_only`).
pub(crate) fn tls_client_hello(sni: &str, alpn: &str, tls12_only: bool, random: u64) -> Vec<u8> {
    let mut body = vec![3, 3];
    for i in 0..4 {
        body.extend_from_slice(&random.rotate_left(i * 16).to_be_bytes());
    }
    body.push(32);
    body.extend_from_slice(&[0x5a; 32]);
    let ciphers: &[u16] = if tls12_only {
        &[
            0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f,
            0x0035,
        ]
    } else {
        &[
            0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014,
        ]
    };
    body.extend_from_slice(&u16_list(ciphers, 2));
    body.extend_from_slice(&[1, 0]);
    let mut exts = Vec::new();
    let mut sni_data = Vec::new();
    sni_data.extend_from_slice(&((sni.len() + 3) as u16).to_be_bytes());
    sni_data.push(0);
    sni_data.extend_from_slice(&(sni.len() as u16).to_be_bytes());
    sni_data.extend_from_slice(sni.as_bytes());
    ext(&mut exts, 0, &sni_data);
    ext(&mut exts, 23, &[]);
    ext(&mut exts, 65281, &[0]);
    ext(&mut exts, 10, &u16_list(&[29, 23, 24], 2));
    ext(&mut exts, 11, &[1, 0]);
    ext(&mut exts, 35, &[]);
    let mut alpn_data = vec![0, (alpn.len() + 1) as u8, alpn.len() as u8];
    alpn_data.extend_from_slice(alpn.as_bytes());
    ext(&mut exts, 16, &alpn_data);
    ext(
        &mut exts,
        13,
        &u16_list(
            &[
                0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
            ],
            2,
        ),
    );
    if !tls12_only {
        let mut ks = vec![0, 36, 0, 29, 0, 32];
        ks.extend_from_slice(&[0x42; 32]);
        ext(&mut exts, 51, &ks);
        ext(&mut exts, 45, &[1, 1]);
        ext(&mut exts, 43, &u16_list(&[0x0304, 0x0303], 1));
    }
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(&exts);
    record(22, 0x0301, &handshake(1, &body))
}

/// The server's first flight: ServerHello (+ ChangeCipherSpec for 1.3; + ServerHelloDone and
/// ChangeCipherSpec for 1.2, where the certificate exchange is left out).
pub(crate) fn tls_server_flight(tls13: bool, alpn: &str, random: u64) -> Vec<u8> {
    let mut body = vec![3, 3];
    for i in 0..4 {
        body.extend_from_slice(&random.rotate_left(i * 16 + 7).to_be_bytes());
    }
    body.push(32);
    body.extend_from_slice(&[0x5a; 32]);
    body.extend_from_slice(if tls13 { &[0x13, 0x01] } else { &[0xc0, 0x2f] });
    body.push(0);
    let mut exts = Vec::new();
    if tls13 {
        ext(&mut exts, 43, &[3, 4]);
        let mut ks = vec![0, 29, 0, 32];
        ks.extend_from_slice(&[0x24; 32]);
        ext(&mut exts, 51, &ks);
    } else {
        ext(&mut exts, 65281, &[0]);
        let mut alpn_data = vec![0, (alpn.len() + 1) as u8, alpn.len() as u8];
        alpn_data.extend_from_slice(alpn.as_bytes());
        ext(&mut exts, 16, &alpn_data);
    }
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(&exts);
    let mut out = record(22, 0x0303, &handshake(2, &body));
    if !tls13 {
        out.extend_from_slice(&record(22, 0x0303, &handshake(14, &[])));
    }
    out.extend_from_slice(&record(20, 0x0303, &[1]));
    out
}

/// An SSH binary packet carrying KEXINIT, as OpenSSH sends it.
pub(crate) fn ssh_kexinit(client: bool) -> Vec<u8> {
    let lists: [&str; 10] = [
        "curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,diffie-hellman-group16-sha512",
        "ssh-ed25519,ecdsa-sha2-nistp256,rsa-sha2-512,rsa-sha2-256",
        "chacha20-poly1305@openssh.com,aes128-ctr,aes256-ctr,aes128-gcm@openssh.com",
        "chacha20-poly1305@openssh.com,aes128-ctr,aes256-ctr,aes128-gcm@openssh.com",
        "umac-64-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-256",
        "umac-64-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-256",
        if client {
            "none,zlib@openssh.com"
        } else {
            "none,zlib@openssh.com,zlib"
        },
        "none,zlib@openssh.com",
        "",
        "",
    ];
    let mut payload = vec![20];
    payload.extend_from_slice(&[if client { 0x11 } else { 0x22 }; 16]);
    for l in lists {
        payload.extend_from_slice(&(l.len() as u32).to_be_bytes());
        payload.extend_from_slice(l.as_bytes());
    }
    payload.extend_from_slice(&[0, 0, 0, 0, 0]);
    let pad = 8 - (payload.len() + 5) % 8 + 4;
    let mut pkt = ((payload.len() + pad + 1) as u32).to_be_bytes().to_vec();
    pkt.push(pad as u8);
    pkt.extend_from_slice(&payload);
    pkt.extend(std::iter::repeat_n(0u8, pad));
    pkt
}

/// Application data records filling `n` bytes (the tail may be a cut record: segments cut
/// records anywhere).
pub(crate) fn tls_app_data(out: &mut Vec<u8>, n: usize) {
    while out.len() < n {
        let len = (n - out.len()).saturating_sub(5).clamp(1, 16_384);
        out.extend_from_slice(&[23, 3, 3]);
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.extend(std::iter::repeat_n(0xa5u8, len));
    }
    out.truncate(n);
}
