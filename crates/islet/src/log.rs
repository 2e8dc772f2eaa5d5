//! `islet log`: the sensor's signing key, and verifying chained logs.

use crate::Failure;
use crate::cli::{LogKeygenArgs, LogVerifyArgs};
use islet_sink::chain;
use islet_sink::verify::{Verify, VerifyError, verify_files};

pub(crate) fn keygen(a: &LogKeygenArgs) -> Result<(), Failure> {
    let pk = chain::keygen(&a.out).map_err(Failure::Input)?;
    println!(
        "wrote {} and {} (key id {})",
        a.out.join("sensor.key").display(),
        a.out.join("sensor.pub").display(),
        chain::key_id(&pk)
    );
    Ok(())
}

pub(crate) fn verify(a: &LogVerifyArgs) -> Result<(), Failure> {
    let key = chain::read_public_key(&a.key).map_err(Failure::Input)?;
    let opts = Verify {
        key,
        partial: a.partial,
    };
    match verify_files(&a.files, &opts) {
        Ok(r) => {
            println!(
                "ok: {} records (seq {}..{}), {} signed checkpoints, {} gap records declaring {} missing, ends with a final checkpoint",
                r.records, r.first_seq, r.last_seq, r.checkpoints, r.gaps, r.missing
            );
            Ok(())
        }
        Err(VerifyError::Bad(f)) => Err(Failure::Input(format!("log verify: FAILED: {f}"))),
        Err(VerifyError::Io(e)) => Err(Failure::Runtime(format!("log verify: {e}"))),
    }
}
