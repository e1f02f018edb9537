//! ICMP and ICMPv6 echo messages on the wire: encoding requests, decoding replies,
//! and the Internet checksum.
//!
//! Every request we send is [`ECHO_LEN`] bytes: the 8-byte echo header followed by a
//! payload of the probe's random 64-bit token and a fixed [`MAGIC`]. Repliers echo the
//! payload verbatim, so a reply proves which probe it answers; the magic cheaply tells
//! our replies from those of other ping tools that share a raw socket's view.
//! Matching a decoded reply to a waiting probe is `icmp`'s job, not this module's.

use std::net::IpAddr;

/// Echo header (type, code, checksum, identifier, sequence) plus token plus magic.
pub(crate) const ECHO_LEN: usize = 8 + 8 + MAGIC.len();

/// Marks a payload as ours; any 8 bytes would do, this one reads well in tcpdump.
pub(crate) const MAGIC: [u8; 8] = *b"wardops!";

const V4_ECHO_REQUEST: u8 = 8;
const V4_ECHO_REPLY: u8 = 0;
const V6_ECHO_REQUEST: u8 = 128;
const V6_ECHO_REPLY: u8 = 129;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Family {
    V4,
    V6,
}

impl Family {
    pub(crate) fn of(address: IpAddr) -> Family {
        match address {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// The message type of an echo reply; used to filter raw sockets in the kernel.
    pub(crate) fn reply_type(self) -> u8 {
        match self {
            Family::V4 => V4_ECHO_REPLY,
            Family::V6 => V6_ECHO_REPLY,
        }
    }
}

/// The fields of an echo message that matching cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Echo {
    pub identifier: u16,
    pub sequence: u16,
    pub token: u64,
}

/// Builds an echo request. IPv4 carries our checksum; for ICMPv6 the checksum covers
/// a pseudo-header with the source address, which only the kernel knows, so Linux
/// always computes it on ICMPv6 sockets and we leave the field zero.
pub(crate) fn encode_request(family: Family, echo: Echo) -> [u8; ECHO_LEN] {
    let mut packet = [0u8; ECHO_LEN];
    packet[0] = match family {
        Family::V4 => V4_ECHO_REQUEST,
        Family::V6 => V6_ECHO_REQUEST,
    };
    packet[4..6].copy_from_slice(&echo.identifier.to_be_bytes());
    packet[6..8].copy_from_slice(&echo.sequence.to_be_bytes());
    packet[8..16].copy_from_slice(&echo.token.to_be_bytes());
    packet[16..].copy_from_slice(&MAGIC);
    if family == Family::V4 {
        let sum = checksum(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    packet
}

/// Decodes an echo reply carrying our magic, or `None` for anything else (other ICMP
/// types, other tools' pings, truncated or corrupt messages).
///
/// `ip_header` is true for raw IPv4 sockets, which deliver the IPv4 header in front of
/// the ICMP message; datagram sockets and all IPv6 sockets deliver the message alone.
pub(crate) fn decode_reply(family: Family, datagram: &[u8], ip_header: bool) -> Option<Echo> {
    let message = if ip_header {
        let first = *datagram.first()?;
        let header_len = usize::from(first & 0x0f) * 4;
        if first >> 4 != 4 || header_len < 20 {
            return None;
        }
        datagram.get(header_len..)?
    } else {
        datagram
    };
    if message.len() < ECHO_LEN || message[0] != family.reply_type() || message[1] != 0 {
        return None;
    }
    // A raw IPv4 socket hands us the message unverified (the kernel checks ICMPv6 and
    // datagram-socket checksums itself); a valid message sums to zero.
    if family == Family::V4 && checksum(message) != 0 {
        return None;
    }
    if message[16..ECHO_LEN] != MAGIC {
        return None;
    }
    Some(Echo {
        identifier: u16::from_be_bytes([message[4], message[5]]),
        sequence: u16::from_be_bytes([message[6], message[7]]),
        token: u64::from_be_bytes(message[8..16].try_into().ok()?),
    })
}

/// The Internet checksum (RFC 1071): one's complement of the one's-complement sum of
/// 16-bit big-endian words, an odd trailing byte padded with zero.
pub(crate) fn checksum(data: &[u8]) -> u16 {
    let mut chunks = data.chunks_exact(2);
    let mut sum: u32 = chunks
        .by_ref()
        .map(|word| u32::from(u16::from_be_bytes([word[0], word[1]])))
        .sum();
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ECHO: Echo = Echo {
        identifier: 0xbeef,
        sequence: 513,
        token: 0x0123_4567_89ab_cdef,
    };

    /// What a replier does to a request: flip the type, fix the checksum.
    fn reply_to(family: Family, mut request: [u8; ECHO_LEN]) -> [u8; ECHO_LEN] {
        request[0] = family.reply_type();
        request[2..4].fill(0);
        if family == Family::V4 {
            let sum = checksum(&request);
            request[2..4].copy_from_slice(&sum.to_be_bytes());
        }
        request
    }

    #[test]
    fn checksum_matches_rfc_1071_example() {
        // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
        assert_eq!(checksum(&[0xff]), !0xff00);
        assert_eq!(checksum(&[]), 0xffff);
    }

    #[test]
    fn v4_request_layout_and_checksum() {
        let packet = encode_request(Family::V4, ECHO);
        assert_eq!(packet[..2], [8, 0]);
        assert_eq!(packet[4..8], [0xbe, 0xef, 0x02, 0x01]);
        assert_eq!(packet[16..], MAGIC);
        assert_eq!(
            checksum(&packet),
            0,
            "a request with its checksum sums to zero"
        );
        // A request is not a reply, even our own (raw sockets see both on loopback).
        assert_eq!(decode_reply(Family::V4, &packet, false), None);
    }

    #[test]
    fn v6_request_leaves_checksum_to_kernel() {
        let packet = encode_request(Family::V6, ECHO);
        assert_eq!(packet[..4], [128, 0, 0, 0]);
        assert_eq!(decode_reply(Family::V6, &packet, false), None);
    }

    #[test]
    fn replies_round_trip() {
        for family in [Family::V4, Family::V6] {
            let reply = reply_to(family, encode_request(family, ECHO));
            assert_eq!(
                decode_reply(family, &reply, false),
                Some(ECHO),
                "{family:?}"
            );
            let other = if family == Family::V4 {
                Family::V6
            } else {
                Family::V4
            };
            assert_eq!(
                decode_reply(other, &reply, false),
                None,
                "{family:?} as {other:?}"
            );
        }
    }

    #[test]
    fn v4_reply_behind_ip_header() {
        let reply = reply_to(Family::V4, encode_request(Family::V4, ECHO));
        // 24-byte header (IHL 6, i.e. with options) to prove the length is honoured.
        let mut datagram = vec![0u8; 24];
        datagram[0] = 0x46;
        datagram.extend_from_slice(&reply);
        assert_eq!(decode_reply(Family::V4, &datagram, true), Some(ECHO));
        datagram[0] = 0x66; // not IPv4
        assert_eq!(decode_reply(Family::V4, &datagram, true), None);
        assert_eq!(decode_reply(Family::V4, &[0x45], true), None);
    }

    #[test]
    fn corrupt_or_foreign_replies_rejected() {
        let reply = reply_to(Family::V4, encode_request(Family::V4, ECHO));
        let mut flipped = reply;
        flipped[10] ^= 0x40; // token bit flipped in transit: checksum catches it
        assert_eq!(decode_reply(Family::V4, &flipped, false), None);
        assert_eq!(
            decode_reply(Family::V4, &reply[..ECHO_LEN - 1], false),
            None
        );

        let mut foreign = encode_request(Family::V6, ECHO);
        foreign[16..].copy_from_slice(b"ping-ts!");
        assert_eq!(
            decode_reply(Family::V6, &reply_to(Family::V6, foreign), false),
            None
        );
    }

    #[test]
    fn token_mismatch_is_visible_to_matching() {
        let forged = Echo {
            token: ECHO.token ^ 1,
            ..ECHO
        };
        let reply = reply_to(Family::V4, encode_request(Family::V4, forged));
        let decoded = decode_reply(Family::V4, &reply, false).unwrap();
        assert_eq!(
            (decoded.identifier, decoded.sequence),
            (ECHO.identifier, ECHO.sequence)
        );
        assert_ne!(decoded.token, ECHO.token);
    }
}
