//! Unit tests of the verifier: edited signed records, logs cut short of the saved head.
use super::*;
use crate::chain::{ChainConfig, Head, SavedHead, Sealer};
use ed25519_dalek::SigningKey;

/// One run of a sensor from `head`: `n` records, a checkpoint every 5, a final one.
fn run(key: &SigningKey, head: Head, n: usize) -> (Vec<Vec<u8>>, Head) {
    let cfg = ChainConfig {
        sensor: "unit-9".into(),
        checkpoint_every: 5,
        checkpoint_interval_ns: 0,
    };
    let mut s = Sealer::resume(cfg, Some(key.clone()), head);
    let mut out = Vec::new();
    for i in 0..n {
        let l = format!(
            r#"{{"timestamp":"2024-05-01T00:00:00.000000+0000","event_type":"dns","i":{i}}}"#
        );
        s.seal(l.as_bytes(), &mut out);
    }
    s.checkpoint(true, &mut out);
    let lines = out
        .split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    (lines, s.head())
}

fn walk(key: &SigningKey, lines: &[Vec<u8>], e: Option<&ExpectedEnd>) -> Result<Report, Failure> {
    let mut w = Walker::new(Verify {
        key: key.verifying_key(),
        partial: false,
    });
    for (i, l) in lines.iter().enumerate() {
        w.line("t.json", i as u64 + 1, l)?;
    }
    w.end_at(e)
}

/// Issue 18, finding 7: a log cut at a checkpoint, or without its later run, verified.
#[test]
fn finding_7_a_log_cut_at_a_checkpoint_is_truncated_given_the_saved_head() {
    let key = SigningKey::from_bytes(&[4; 32]);
    let (run1, h1) = run(&key, Head::default(), 12);
    let (run2, h2) = run(&key, h1, 7);
    // The second run continues the first: one chain.
    let both: Vec<Vec<u8>> = run1.iter().chain(&run2).cloned().collect();
    let d = std::env::temp_dir().join(format!("islet-verify-unit-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap_or(());
    SavedHead {
        head: h2,
        clean: true,
        pending: None,
    }
    .store(&d.join("chain.head"))
    .unwrap_or(());
    let state = ExpectedEnd::from_state(&d).unwrap_or_else(|_| ExpectedEnd::seq(0));
    assert_eq!(state.last_seq, h2.next_seq - 1);
    let r = walk(&key, &both, Some(&state)).unwrap_or_default();
    assert_eq!(r.last_seq, h2.next_seq - 1);
    // Without the expectation, the first run alone passes (it ends with a final checkpoint)...
    assert!(walk(&key, &run1, None).is_ok());
    // ...with it, it is truncated, as is a log cut at a middle checkpoint of run 2.
    let f = walk(&key, &run1, Some(&state))
        .err()
        .unwrap_or_else(|| panic!("run 1 alone passed"));
    assert_eq!(f.kind, FailureKind::Truncated, "{f}");
    assert!(f.detail.contains("a later run's file is missing"), "{f}");
    let cut = run1.len() + 6;
    assert!(String::from_utf8_lossy(&both[cut - 1]).contains("checkpoint"));
    let f = walk(&key, &both[..cut], Some(&ExpectedEnd::seq(h2.next_seq - 1)))
        .err()
        .unwrap_or_else(|| panic!("cut log passed"));
    assert_eq!(f.kind, FailureKind::Truncated, "{f}");
    // A log past the expected end, or a different last record, is not accepted either.
    let f = walk(&key, &both, Some(&ExpectedEnd::seq(h1.next_seq - 1))).err();
    assert_eq!(f.map(|f| f.kind), Some(FailureKind::Inserted));
    let mut other = state.clone();
    other.last_hash = Some([5; 32]);
    let f = walk(&key, &both, Some(&other)).err();
    assert_eq!(f.map(|f| f.kind), Some(FailureKind::Altered));
    // An unclean head says so.
    SavedHead {
        head: h2,
        clean: false,
        pending: None,
    }
    .store(&d.join("chain.head"))
    .unwrap_or(());
    let unclean =
        ExpectedEnd::from_state(&d.join("chain.head")).unwrap_or_else(|_| ExpectedEnd::seq(0));
    let f = walk(&key, &run1, Some(&unclean))
        .err()
        .map(|f| f.detail)
        .unwrap_or_default();
    assert!(f.contains("not stopped cleanly"), "{f}");
    assert!(ExpectedEnd::from_state(&d.join("nothing")).is_err());
    let _ = std::fs::remove_dir_all(&d);
}

/// Issue 18, finding 7: a field added to the final checkpoint, or a space, verified.
#[test]
fn finding_7_an_edited_final_checkpoint_is_a_bad_signature() {
    let key = SigningKey::from_bytes(&[6; 32]);
    let (log, _) = run(&key, Head::default(), 8);
    assert!(walk(&key, &log, None).is_ok());
    let last = String::from_utf8_lossy(&log[log.len() - 1]).into_owned();
    for edit in [
        last.replacen("\"final\":true", "\"final\":true,\"by\":\"me\"", 1),
        last.replacen("\"event_type\":", "\"event_type\" :", 1),
        last.replacen("}}", "} }", 1),
    ] {
        assert_ne!(edit, last);
        let mut l = log.clone();
        let n = l.len();
        l[n - 1] = edit.into_bytes();
        let f = walk(&key, &l, None)
            .err()
            .unwrap_or_else(|| panic!("edited final checkpoint passed"));
        assert_eq!(
            (f.kind, f.at.line),
            (FailureKind::BadSignature, n as u64),
            "{f}"
        );
    }
}
