//! Which TCP handshakes completed: SYN/ACKs of the services a detector watches (flood victims,
//! admin and management ports), waiting for the client's answer.
//!
//! A handshake is complete when the client acknowledges the server's SYN/ACK: a segment from
//! the client, without SYN or RST, whose acknowledgement number is the SYN/ACK's sequence
//! number plus one. A client that answers with a RST refused it (a raw-socket flooder's kernel
//! does; so does a port scanner's). A SYN/ACK with the sequence number of one already waiting
//! is the server's retransmit (its client never answered: a forged source).
//!
//! The table is direct-mapped by connection (a power of two of slots): a new SYN/ACK takes its
//! slot whatever was there, so a spoofed flood costs one slot write per SYN/ACK and memory is
//! fixed. A handshake whose slot was taken before its client answered goes uncounted
//! (`overwritten`), which under a flood can only make completions fewer, never invent one.

use crate::flood::ip_bytes;
use crate::sketch::hash64;
use std::net::IpAddr;

/// One connection, client side first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conn {
    pub client: IpAddr,
    pub cport: u16,
    pub server: IpAddr,
    pub sport: u16,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    conn: Conn,
    /// The SYN/ACK's sequence number.
    seq: u32,
    ts_ns: u64,
}

/// What a client's segment did to a waiting handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The client acknowledged the SYN/ACK: the connection is open.
    Completed,
    /// The client reset it.
    Reset,
}

/// SYN/ACKs waiting for their client.
#[derive(Debug)]
pub struct Handshakes {
    slots: Vec<Option<Pending>>,
    /// Slots in use (0: no client segment needs a look).
    used: usize,
    /// Waiting handshakes displaced by another's SYN/ACK.
    pub overwritten: u64,
}

/// Slots of the table: 32,768 (about 2 MiB).
pub const SLOTS: usize = 1 << 15;

fn slot_of(c: &Conn) -> usize {
    let mut b = [0u8; 36];
    b[..16].copy_from_slice(&ip_bytes(c.client));
    b[16..32].copy_from_slice(&ip_bytes(c.server));
    b[32..34].copy_from_slice(&c.cport.to_be_bytes());
    b[34..].copy_from_slice(&c.sport.to_be_bytes());
    (hash64(&b) as usize) & (SLOTS - 1)
}

impl Default for Handshakes {
    fn default() -> Self {
        Handshakes {
            slots: vec![None; SLOTS],
            used: 0,
            overwritten: 0,
        }
    }
}

impl Handshakes {
    /// A SYN/ACK of `conn` with sequence number `seq`. True if it is a retransmit of one
    /// already waiting.
    pub fn synack(&mut self, conn: Conn, seq: u32, ts_ns: u64) -> bool {
        let i = slot_of(&conn);
        match &mut self.slots[i] {
            Some(p) if p.conn == conn && p.seq == seq => true,
            Some(p) => {
                self.overwritten += 1;
                *p = Pending { conn, seq, ts_ns };
                false
            }
            s @ None => {
                *s = Some(Pending { conn, seq, ts_ns });
                self.used += 1;
                false
            }
        }
    }

    /// Is anything waiting? (If not, client segments need no look.)
    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    /// A segment from `conn`'s client with `flags` and acknowledgement number `ack`: did it
    /// complete or reset a waiting handshake? The handshake stops waiting either way.
    pub fn client(&mut self, conn: Conn, flags: u8, ack: u32) -> Option<Answer> {
        const SYN: u8 = 0x02;
        const RST: u8 = 0x04;
        const ACK: u8 = 0x10;
        if self.used == 0 || flags & SYN != 0 {
            return None;
        }
        let i = slot_of(&conn);
        let p = self.slots[i].filter(|p| p.conn == conn)?;
        let answer = if flags & RST != 0 {
            Answer::Reset
        } else if flags & ACK != 0 && ack == p.seq.wrapping_add(1) {
            Answer::Completed
        } else {
            return None;
        };
        self.slots[i] = None;
        self.used -= 1;
        Some(answer)
    }

    /// When the handshake of `conn` began waiting, if it still is.
    pub fn waiting_since(&self, conn: Conn) -> Option<u64> {
        self.slots[slot_of(&conn)]
            .filter(|p| p.conn == conn)
            .map(|p| p.ts_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(c: u8, port: u16) -> Conn {
        Conn {
            client: IpAddr::from([198, 51, 100, c]),
            cport: port,
            server: IpAddr::from([198, 51, 100, 1]),
            sport: 443,
        }
    }

    #[test]
    fn completion_reset_retransmit_and_wrong_ack() {
        let mut h = Handshakes::default();
        assert!(h.is_empty());
        assert!(!h.synack(conn(2, 1000), u32::MAX, 1));
        assert!(h.synack(conn(2, 1000), u32::MAX, 2), "same seq: retransmit");
        // A data segment acknowledging something else does not complete it.
        assert_eq!(h.client(conn(2, 1000), 0x10, 5), None);
        // The ISN+1 wraps.
        assert_eq!(h.client(conn(2, 1000), 0x10, 0), Some(Answer::Completed));
        assert_eq!(h.client(conn(2, 1000), 0x10, 0), None, "answered once");
        h.synack(conn(3, 1000), 7, 3);
        assert_eq!(h.client(conn(3, 1000), 0x14, 8), Some(Answer::Reset));
        // A SYN from the client (a retransmitted SYN) answers nothing.
        h.synack(conn(4, 1000), 7, 3);
        assert_eq!(h.client(conn(4, 1000), 0x02, 8), None);
        assert_eq!(h.waiting_since(conn(4, 1000)), Some(3));
        assert!(!h.is_empty());
    }

    #[test]
    fn memory_is_fixed_under_a_spoofed_flood() {
        let mut h = Handshakes::default();
        for i in 0..200_000u32 {
            let c = Conn {
                client: IpAddr::from(i.to_be_bytes()),
                cport: 1,
                server: IpAddr::from([198, 51, 100, 1]),
                sport: 443,
            };
            h.synack(c, i, u64::from(i));
        }
        assert_eq!(h.slots.len(), SLOTS);
        assert!(h.used <= SLOTS);
        assert!(h.overwritten >= 200_000 - SLOTS as u64);
    }
}
