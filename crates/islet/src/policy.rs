//! `islet policy …`: keys, signing and verification of policy bundles, and checking, showing
//! and simulating policies.

use crate::Failure;
use crate::cli::{
    PolicyCheckArgs, PolicyKeygenArgs, PolicyShowArgs, PolicySignArgs, PolicySimulateArgs,
    PolicyVerifyArgs,
};
use islet_policy::render::{Listing, findings};
use islet_policy::signing::Unverified;
use islet_policy::{Inventory, bundle, import};

pub(crate) fn keygen(a: &PolicyKeygenArgs) -> Result<(), Failure> {
    let pk = bundle::keygen(&a.out).map_err(|e| Failure::Input(e.to_string()))?;
    println!(
        "wrote {} and {} (key id {})",
        a.out.join("policy.key").display(),
        a.out.join("policy.pub").display(),
        bundle::key_id(&pk)
    );
    Ok(())
}

pub(crate) fn sign(a: &PolicySignArgs) -> Result<(), Failure> {
    let (nb, na) = (a.not_before.as_deref(), a.not_after.as_deref());
    let s = islet_policy::signing::sign(&a.bundle, &a.key, a.version, nb, na, a.valid_days)?;
    println!("{s}");
    Ok(())
}

pub(crate) fn verify(a: &PolicyVerifyArgs) -> Result<(), Failure> {
    let v = islet_policy::signing::verify(&a.bundle, &a.pubkeys, a.state.as_deref())?;
    println!("{v}");
    Ok(())
}

pub(crate) fn check(a: &PolicyCheckArgs) -> Result<(), Failure> {
    let p = import::load(&a.policy).map_err(|e| Failure::Input(e.to_string()))?;
    let tiers = p.tiers.join(", ");
    let (path, rules, n) = (a.policy.display(), p.rules.len(), p.tiers.len());
    println!("{path}: {rules} rules in {n} tiers ({tiers})");
    for u in &p.unsupported {
        println!("warning: {u}");
    }
    let inv = a.inventory.as_deref().map(Inventory::from_path);
    let inv = inv.transpose().map_err(|e| Failure::Input(e.to_string()))?;
    let findings = findings(&p, inv.as_ref());
    for f in &findings {
        println!("warning: {f}");
    }
    println!("{} warnings", p.unsupported.len() + findings.len());
    Ok(())
}

pub(crate) fn show(a: &PolicyShowArgs) -> Result<(), Failure> {
    let p = import::load(&a.policy).map_err(|e| Failure::Input(e.to_string()))?;
    print!("{}{}", Unverified::read(&a.policy), Listing(&p));
    Ok(())
}

pub(crate) fn simulate(a: &PolicySimulateArgs) -> Result<(), Failure> {
    let (base, inv) = (a.baseline.as_deref(), a.inventory.as_deref());
    let mut sim = islet_sensor::simulate::simulate(&a.pcaps, &a.policy, base, inv)?;
    sim.all = a.all;
    print!("{sim}");
    Ok(())
}
