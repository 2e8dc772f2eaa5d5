//! Synthetic threat intelligence for benchmarks: `count` indicators as a MISP CSV export, a
//! mix of public addresses, narrow networks, domains, host names, URLs and fingerprints, the
//! same for the same seed (`islet intel synth`).

use islet_synth::SplitMix64;
use std::io::{self, Write};
use std::net::Ipv4Addr;

/// Top-level domains the synthetic names end in.
const TLDS: [&str; 8] = ["com", "net", "org", "ru", "top", "xyz", "info", "io"];

/// Write the CSV header and `count` indicators drawn from `seed` to `w`.
pub fn write_misp_csv(w: &mut dyn Write, count: u64, seed: u64) -> io::Result<()> {
    let mut r = SplitMix64::new(seed);
    let hex = |r: &mut SplitMix64, n: usize| -> String {
        (0..n)
            .map(|_| char::from(b"0123456789abcdef"[r.below(16) as usize]))
            .collect()
    };
    let label = |r: &mut SplitMix64| -> String {
        let n = 5 + r.below(8) as usize;
        (0..n)
            .map(|_| char::from(b'a' + r.below(26) as u8))
            .collect()
    };
    writeln!(w, "uuid,event_id,category,type,value,comment,to_ids,date")?;
    for i in 0..count {
        let p = r.below(100);
        let (t, v) = match p {
            0..30 => ("ip-dst", public_v4(&mut r).to_string()),
            30..40 => {
                // Narrow networks, as blocklists carry them: /24 to /28.
                let len = 24 + r.below(5) as u32;
                let x = u32::from(public_v4(&mut r)) & (u32::MAX << (32 - len));
                ("ip-dst", format!("{}/{len}", Ipv4Addr::from(x)))
            }
            40..75 => (
                "domain",
                format!("{}.{}", label(&mut r), TLDS[r.below(8) as usize]),
            ),
            75..80 => (
                "hostname",
                format!(
                    "{}.{}.{}",
                    label(&mut r),
                    label(&mut r),
                    TLDS[r.below(8) as usize]
                ),
            ),
            80..90 => (
                "url",
                format!(
                    "http://{}.{}/{}/{}.php",
                    label(&mut r),
                    TLDS[r.below(8) as usize],
                    label(&mut r),
                    label(&mut r)
                ),
            ),
            90..95 => ("ja3-fingerprint-md5", hex(&mut r, 32)),
            95..98 => ("hassh-md5", hex(&mut r, 32)),
            _ => ("x509-fingerprint-sha1", hex(&mut r, 40)),
        };
        writeln!(
            w,
            "{:08x}-0000-4000-8000-{:012x},{},Network activity,{t},{v},,1,20240101",
            i as u32,
            r.next_u64() & 0xffff_ffff_ffff,
            1 + i / 10_000
        )?;
    }
    w.flush()
}

/// A random public IPv4 address: not private, loopback, link-local, shared or multicast space,
/// as published indicators are.
fn public_v4(r: &mut SplitMix64) -> Ipv4Addr {
    loop {
        let a = Ipv4Addr::from(r.next_u64() as u32);
        let o = a.octets();
        let special = a.is_private()
            || a.is_loopback()
            || a.is_link_local()
            || a.is_multicast()
            || a.is_broadcast()
            || a.is_unspecified()
            || o[0] == 0
            || o[0] >= 240
            || (o[0] == 100 && (64..128).contains(&o[1]));
        if !special {
            return a;
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_feed_and_every_address_is_public() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        write_misp_csv(&mut a, 500, 3).expect("write");
        write_misp_csv(&mut b, 500, 3).expect("write");
        assert_eq!(a, b);
        let text = String::from_utf8(a).expect("utf-8");
        assert_eq!(text.lines().count(), 501);
        let mut r = SplitMix64::new(9);
        for _ in 0..1000 {
            let ip = public_v4(&mut r);
            assert!(!ip.is_private() && !ip.is_loopback(), "{ip}");
        }
    }
}
