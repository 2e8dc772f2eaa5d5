//! `islet demo`: the main job on embedded defaults. Synthesise a scenario, analyse it like any
//! capture, write eve.json, and report what the evidence says; then the attack scenarios
//! (scan, floods, lateral movement, SLP) and the detections they raise; then the console
//! (`islet_sensor::demo` does the work; this prints it and starts the console).

use crate::Failure;
use crate::cli::DemoArgs;
use crate::read::Term;
use islet_sensor::demo::{ATTACKS, Demo, EveReport};
use signal_hook::consts::{SIGINT, SIGTERM};

pub(crate) fn run(a: &DemoArgs) -> Result<(), Failure> {
    let d = Demo::new(&a.dir);
    let (pcap, eve, key) = (d.pcap(), d.eve(), d.keys().join("sensor.pub"));
    let (pcap_shown, eve_shown, key_shown) = (pcap.display(), eve.display(), key.display());
    let s = d.synthesise(a.flows)?;
    let (packets, flows) = (s.packets, s.flows);
    println!("islet demo: synthesised {packets} packets in {flows} flows -> {pcap_shown}");
    let s = d.analyse(&Term::new(true))?;
    let (secs, rate, workers) = (s.wall.as_secs_f64(), s.packets_per_sec(), s.workers);
    println!(
        "islet demo: analysed in {secs:.3}s ({rate:.0} packets/s on {workers} workers) -> {eve_shown}"
    );
    print!("{}", EveReport::read(&eve)?);
    let r = d.verify()?;
    println!(
        "islet demo: evidence chain verified: {} records, {} signed checkpoints (islet log verify {eve_shown} --key {key_shown})",
        r.records, r.checkpoints
    );
    println!("islet demo: attack scenarios (islet synth --profile …; docs/DETECTION.md):");
    for (profile, packets) in ATTACKS {
        let run = d.attack(profile, packets)?;
        println!("  {profile}:");
        for (detection, signature) in d.detections(&run, &Term::new(false))? {
            println!("    {detection:<24} {signature}");
        }
    }
    console(a, &d)
}

/// The investigation side: start the console, have a sensor forward the scenario and the
/// attacks to it over the Forward protocol, and serve it (until Ctrl-C, or exit with --exit).
fn console(a: &DemoArgs, d: &Demo) -> Result<(), Failure> {
    let data = a.dir.join("console");
    let mut cfg = islet_console::serve::ServeConfig::new(data.clone());
    cfg.listen.clone_from(&a.listen);
    cfg.forward_listen = Some("127.0.0.1:0".into());
    // The Forward port takes a shared key even here: one made for this run.
    let mut key = [0u8; 24];
    getrandom::getrandom(&mut key).map_err(|e| Failure::Runtime(format!("random: {e}")))?;
    let key = hex::encode(key);
    cfg.forward_shared_key = Some(key.clone());
    let running = islet_console::serve::start(cfg).map_err(|e| Failure::Runtime(e.to_string()))?;
    let forward = running
        .forward
        .map(|f| f.to_string())
        .ok_or_else(|| Failure::Runtime("the console has no Forward receiver".into()))?;
    d.forward(&forward, &key, &Term::new(false))?;
    let token = crate::serve::create_token(&data, islet_store::Role::Analyst, "demo")?;
    let http = running.http;
    println!(
        "\nislet demo: the sensor forwarded its evidence to the console (Forward protocol, acked after commit).\n\
         islet demo: console at http://{http}/ — sign in with this analyst token:\n  {token}\n\
         \x20 (API: curl -H 'Authorization: Bearer {token}' http://{http}/api/cases)"
    );
    if a.exit {
        running.stop();
        return Ok(());
    }
    let data_shown = data.display();
    println!(
        "islet demo: serving until Ctrl-C. Next: `islet serve --data {data_shown}` to reopen it; `islet read PCAP -o -` on your own captures."
    );
    let term = crate::run::signal_flag(&[SIGTERM, SIGINT], "")?;
    while !term.load(std::sync::atomic::Ordering::SeqCst) {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    running.stop();
    Ok(())
}
