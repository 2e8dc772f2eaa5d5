//! Argument parsing (clap) and dispatch.

use crate::Failure;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// islet — a security island for east-west traffic.
#[derive(Debug, Parser)]
#[command(name = "islet", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Analyse capture files (pcap/pcapng) and write EVE JSON events.
    Read(ReadArgs),
    /// Write synthetic scenario traffic to a pcap file.
    Synth(SynthArgs),
    /// Run the main job on embedded defaults: synthesise a scenario, analyse it, report.
    Demo(DemoArgs),
}

/// Arguments of `islet read`.
#[derive(Debug, clap::Args)]
pub(crate) struct ReadArgs {
    /// Capture files, read in order as one stream.
    #[arg(required = true)]
    pub pcaps: Vec<PathBuf>,
    /// Where to write EVE JSON lines (`-` for stdout).
    #[arg(short = 'o', long = "output", default_value = "-")]
    pub output: String,
    /// Configuration file (TOML); see docs/CONFIG.md.
    #[arg(short = 'c', long)]
    pub config: Option<PathBuf>,
    /// Community ID seed (overrides output.community_id_seed).
    #[arg(long)]
    pub community_id_seed: Option<u16>,
    /// Worker threads (0 = one per core; overrides sensor.workers).
    #[arg(short = 'w', long)]
    pub workers: Option<usize>,
    /// Most flows tracked at once (overrides flow.max_flows).
    #[arg(long)]
    pub max_flows: Option<usize>,
    /// No progress bar, even on a terminal.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Only read the capture and touch each packet: no decoding, no output. Measures the raw
    /// read floor that throughput is compared with (docs/PERFORMANCE.md).
    #[arg(long)]
    pub raw_floor: bool,
}

/// Arguments of `islet synth`.
#[derive(Debug, clap::Args)]
pub(crate) struct SynthArgs {
    /// Output pcap file.
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    /// Scenario profile.
    #[arg(long, default_value = "mixed")]
    pub profile: String,
    /// Number of hosts.
    #[arg(long, default_value_t = 64)]
    pub hosts: u32,
    /// Number of flows.
    #[arg(long, default_value_t = 2000)]
    pub flows: u64,
    /// Stop after this many packets (0 = when the flows are done).
    #[arg(long, default_value_t = 0)]
    pub packets: u64,
    /// Capture duration in seconds over which flows start.
    #[arg(long, default_value_t = 60)]
    pub duration: u64,
    /// Random seed: the same seed gives the same file.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Arguments of `islet demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// Folder for the scenario capture and eve.json.
    #[arg(long, default_value = "islet-demo")]
    pub dir: PathBuf,
    /// Number of flows in the scenario.
    #[arg(long, default_value_t = 3000)]
    pub flows: u64,
}

pub(crate) fn main() -> Result<(), Failure> {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let usage = e.use_stderr();
            let _ = e.print();
            if usage {
                return Err(Failure::Input("bad usage (see --help)".into()));
            }
            return Ok(());
        }
    };
    match cli.command {
        Command::Read(a) => crate::read::run(&a).map(|_| ()),
        Command::Synth(a) => crate::synth::run(&a),
        Command::Demo(a) => crate::demo::run(&a),
    }
}
