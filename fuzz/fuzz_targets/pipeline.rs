//! Reader + decoder + defrag + flow table + probes, end to end, on arbitrary capture files.
#![no_main]
use islet_capture::PcapFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut f) = PcapFile::from_bytes("fuzz", data.to_vec()) else { return };
    let mut cfg = islet_sensor::SensorConfig::default();
    cfg.sensor.workers = 1;
    cfg.flow.max_flows = 64;
    cfg.defrag.memcap = 1 << 16;
    let _ = islet_sensor::run(&cfg, &mut f, &mut std::io::sink());
});
