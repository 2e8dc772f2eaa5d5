//! The resumable frame sizer (issue 18, finding 5) agrees with sizing the whole buffer at once,
//! however the bytes are split, and reads each header byte once.

use islet_sink::forward::proto::{Sizer, value_len};
use proptest::prelude::*;

proptest! {
    #[test]
    fn sizer_agrees_with_sizing_at_once(data in proptest::collection::vec(any::<u8>(), 0..400), cuts in proptest::collection::vec(any::<usize>(), 0..20)) {
        let whole = value_len(&data, 8);
        let mut ends: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
        ends.push(data.len());
        ends.sort_unstable();
        let mut s = Sizer::new();
        let mut got = Ok(None);
        for e in ends {
            got = s.advance(&data[..e], 8);
            if !matches!(got, Ok(None)) {
                break;
            }
        }
        match (&whole, &got) {
            (Err(_), Err(_)) => {}
            _ => prop_assert_eq!(whole, got),
        }
        prop_assert!(s.scanned() <= data.len() as u64 + 8);
    }
}
