//! `islet log`: the sensor's signing key, and verifying chained logs.

use crate::Failure;
use crate::cli::{LogKeygenArgs, LogReceiveArgs, LogVerifyArgs};
use islet_sink::chain;
use islet_sink::verify::{ExpectedEnd, Verify, VerifyError, verify_files_to};

pub(crate) fn keygen(a: &LogKeygenArgs) -> Result<(), Failure> {
    let pk = chain::keygen(&a.out).map_err(|e| Failure::Input(e.to_string()))?;
    println!(
        "wrote {} and {} (key id {})",
        a.out.join("sensor.key").display(),
        a.out.join("sensor.pub").display(),
        chain::key_id(&pk)
    );
    Ok(())
}

pub(crate) fn verify(a: &LogVerifyArgs) -> Result<(), Failure> {
    let key = chain::read_public_key(&a.key).map_err(|e| Failure::Input(e.to_string()))?;
    let opts = Verify {
        key,
        partial: a.partial,
    };
    let expect = match (&a.state, a.expect_seq) {
        (Some(dir), _) => Some(
            ExpectedEnd::from_state(dir).map_err(|e| Failure::Input(format!("log verify: {e}")))?,
        ),
        (None, Some(n)) => Some(ExpectedEnd::seq(n)),
        (None, None) => None,
    };
    match verify_files_to(&a.files, &opts, expect.as_ref()) {
        Ok(r) => {
            let end = match &expect {
                Some(e) => format!(" where {} says", e.source),
                None => String::new(),
            };
            println!(
                "ok: {} records (seq {}..{}), {} signed checkpoints, {} gap records declaring {} missing, ends with a final checkpoint{end}",
                r.records, r.first_seq, r.last_seq, r.checkpoints, r.gaps, r.missing
            );
            Ok(())
        }
        Err(VerifyError::Bad(f)) => Err(Failure::Input(format!("log verify: FAILED: {f}"))),
        Err(VerifyError::Io(e)) => Err(Failure::Runtime(format!("log verify: {e}"))),
    }
}

/// What `islet log receive` holds between connections.
struct Received {
    out: Box<dyn std::io::Write + Send>,
    check: Option<islet_sink::verify::ChainCheck>,
    kept: u64,
    duplicates: u64,
    broken: Option<String>,
}

pub(crate) fn receive(a: &LogReceiveArgs) -> Result<(), Failure> {
    use islet_sink::forward::{Receiver, ServerConfig};
    use std::io::Write as _;
    use std::sync::{Arc, Condvar, Mutex};
    let check = match &a.key {
        Some(k) => Some(islet_sink::verify::ChainCheck::new(Verify {
            key: chain::read_public_key(k).map_err(|e| Failure::Input(e.to_string()))?,
            partial: true,
        })),
        None => None,
    };
    let out: Box<dyn std::io::Write + Send> = if a.output == "-" {
        Box::new(std::io::BufWriter::new(std::io::stdout()))
    } else {
        Box::new(std::io::BufWriter::new(
            std::fs::File::create(&a.output)
                .map_err(|e| Failure::Runtime(format!("{}: {e}", a.output)))?,
        ))
    };
    let state = Arc::new((
        Mutex::new(Received {
            out,
            check,
            kept: 0,
            duplicates: 0,
            broken: None,
        }),
        Condvar::new(),
    ));
    let st = state.clone();
    let max = a.max_records;
    let r = Receiver::start(
        &a.listen,
        ServerConfig {
            shared_key: a.shared_key.clone(),
            // Not this host's name: a sensor on the same host sends that, and a server refuses
            // a PING with its own name (it would be talking to itself).
            self_hostname: format!("{}-receiver", islet_sink::forward::hostname()),
            ..ServerConfig::default()
        },
        None,
        Arc::new(move |b| {
            let (lock, cv) = &*st;
            let Ok(mut s) = lock.lock() else { return false };
            for e in &b.events {
                let mut j = Vec::new();
                if islet_sink::msgpack::to_json(&e.record, &mut j).is_err() {
                    continue;
                }
                if let Some(c) = s.check.as_mut() {
                    let before = c.duplicates;
                    if let Err(f) = c.record(&e.tag, &j) {
                        if s.broken.is_none() {
                            eprintln!("islet: log receive: chain broken: {f}");
                            s.broken = Some(f.to_string());
                        }
                    } else if c.duplicates > before {
                        s.duplicates += 1;
                        continue;
                    }
                }
                j.push(b'\n');
                if s.out.write_all(&j).is_err() {
                    return false;
                }
                s.kept += 1;
            }
            let _ = s.out.flush();
            if max.is_some_and(|m| s.kept >= m) {
                cv.notify_all();
            }
            true
        }),
    )
    .map_err(|e| Failure::Runtime(format!("listen on {}: {e}", a.listen)))?;
    eprintln!("islet: log receive: listening on {}", r.local_addr());
    let (lock, cv) = &*state;
    let mut s = lock
        .lock()
        .map_err(|_| Failure::Runtime("receiver state poisoned".into()))?;
    while max.is_none_or(|m| s.kept < m) {
        s = cv
            .wait(s)
            .map_err(|_| Failure::Runtime("receiver state poisoned".into()))?;
    }
    let _ = s.out.flush();
    eprintln!(
        "islet: log receive: {} records kept, {} duplicates dropped",
        s.kept, s.duplicates
    );
    if let Some(b) = &s.broken {
        return Err(Failure::Input(format!("log receive: chain broken: {b}")));
    }
    drop(s);
    r.stop();
    Ok(())
}
