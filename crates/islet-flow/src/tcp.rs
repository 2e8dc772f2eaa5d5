//! TCP session state, following Suricata's state names.

use islet_event::TcpState;
use islet_wire::tcp::flags::{ACK, FIN, RST, SYN};

/// Advance `state` for a segment with `flags` sent by the client (`toserver`) or the server.
/// `fin_by_client` remembers who closed first.
pub(crate) fn advance(
    state: TcpState,
    flags: u8,
    toserver: bool,
    fin_by_client: &mut bool,
) -> TcpState {
    use TcpState::*;
    if flags & RST != 0 {
        return Closed;
    }
    let syn = flags & SYN != 0;
    let ack = flags & ACK != 0;
    let fin = flags & FIN != 0;
    match state {
        None => {
            if syn && !ack {
                SynSent
            } else if syn && ack {
                SynRecv
            } else if fin {
                *fin_by_client = toserver;
                FinWait1
            } else {
                // Midstream pickup: data or ACKs of a session that began before we looked.
                Established
            }
        }
        SynSent => {
            if syn && ack && !toserver {
                SynRecv
            } else {
                SynSent
            }
        }
        SynRecv => {
            if fin {
                *fin_by_client = toserver;
                FinWait1
            } else if ack && toserver && !syn {
                Established
            } else {
                SynRecv
            }
        }
        Established => {
            if fin {
                *fin_by_client = toserver;
                FinWait1
            } else {
                Established
            }
        }
        FinWait1 => {
            let from_closer = toserver == *fin_by_client;
            if from_closer {
                FinWait1
            } else if fin {
                if ack { TimeWait } else { Closing }
            } else if ack {
                FinWait2
            } else {
                FinWait1
            }
        }
        FinWait2 => {
            let from_closer = toserver == *fin_by_client;
            if !from_closer && fin {
                TimeWait
            } else {
                FinWait2
            }
        }
        Closing | TimeWait | LastAck => {
            let from_closer = toserver == *fin_by_client;
            if from_closer && ack { Closed } else { state }
        }
        CloseWait => {
            if fin {
                LastAck
            } else {
                CloseWait
            }
        }
        Closed => Closed,
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use islet_wire::tcp::flags::PSH;

    fn run(steps: &[(u8, bool)]) -> TcpState {
        let mut s = TcpState::None;
        let mut f = false;
        for &(flags, ts) in steps {
            s = advance(s, flags, ts, &mut f);
        }
        s
    }

    #[test]
    fn handshake_data_and_graceful_close() {
        let s = run(&[
            (SYN, true),
            (SYN | ACK, false),
            (ACK, true),
            (PSH | ACK, true),
            (ACK, false),
            (FIN | ACK, true),
            (FIN | ACK, false),
            (ACK, true),
        ]);
        assert_eq!(s, TcpState::Closed);
    }

    #[test]
    fn half_close_stays_open() {
        let s = run(&[
            (SYN, true),
            (SYN | ACK, false),
            (ACK, true),
            (FIN | ACK, true),
            (ACK, false),
        ]);
        assert_eq!(s, TcpState::FinWait2);
    }

    #[test]
    fn rst_closes_from_any_state() {
        assert_eq!(run(&[(SYN, true), (RST | ACK, false)]), TcpState::Closed);
    }

    #[test]
    fn midstream_pickup_is_established() {
        assert_eq!(run(&[(PSH | ACK, true)]), TcpState::Established);
    }
}
