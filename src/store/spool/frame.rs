//! One spool record on disk, verifiable on its own:
//!
//! ```text
//! \x1e<length> <crc32, 8 hex digits> <JSON of the record>\n
//! ```
//!
//! The length and the CRC-32 (IEEE) are of the JSON bytes. The record separator `\x1e`
//! never occurs in serde_json's output (control characters are escaped), so it marks
//! the start of a record wherever it is found: a fragment left by a failed append, with
//! the next record glued to it, costs the fragment and nothing else.
//!
//! Lines without the separator are the old format (one JSON record per line, before
//! checksums), read as before so that an upgrade loses nothing.

use std::io::Write;

use crate::store::Record;

const MARK: u8 = 0x1e;
/// The longest header (`<length> <crc> `) a reader looks for before giving up on a mark.
const MAX_HEADER: usize = 32;

/// Appends `record`, framed, to `out`.
pub(super) fn encode(record: &Record, out: &mut Vec<u8>) -> std::io::Result<()> {
    let json = serde_json::to_vec(record)?;
    write!(out, "\x1e{} {:08x} ", json.len(), crc32fast::hash(&json))?;
    out.extend_from_slice(&json);
    out.push(b'\n');
    Ok(())
}

/// The records of one line of the file (without its `\n`), in order; returns how many
/// unreadable pieces it skipped.
pub(super) fn decode_line(line: &[u8], out: &mut Vec<Record>) -> u64 {
    let mut bad = 0;
    let first = next_mark(line, 0);
    if first > 0 {
        // Old format, or the fragment a failed append left before a record.
        match serde_json::from_slice::<Record>(&line[..first]) {
            Ok(r) => out.push(r),
            Err(_) => bad += 1,
        }
    }
    let mut pos = first;
    while pos < line.len() {
        match framed(&line[pos..]) {
            Some((record, used)) => {
                out.push(record);
                pos += used;
                if pos < line.len() && line[pos] != MARK {
                    bad += 1;
                    pos = next_mark(line, pos);
                }
            }
            None => {
                bad += 1;
                pos = next_mark(line, pos + 1);
            }
        }
    }
    bad
}

/// The position of the next mark at or after `from`, or the end.
fn next_mark(line: &[u8], from: usize) -> usize {
    line[from.min(line.len())..]
        .iter()
        .position(|&b| b == MARK)
        .map_or(line.len(), |i| from + i)
}

/// The record framed at the start of `s` (which starts with the mark) and the bytes it
/// takes, if its length and checksum hold.
fn framed(s: &[u8]) -> Option<(Record, usize)> {
    let header = &s[1..s.len().min(1 + MAX_HEADER)];
    let sp1 = header.iter().position(|&b| b == b' ')?;
    let sp2 = sp1 + 1 + header[sp1 + 1..].iter().position(|&b| b == b' ')?;
    let len: usize = std::str::from_utf8(&header[..sp1]).ok()?.parse().ok()?;
    let crc = u32::from_str_radix(std::str::from_utf8(&header[sp1 + 1..sp2]).ok()?, 16).ok()?;
    let start = 1 + sp2 + 1;
    let json = s.get(start..start.checked_add(len)?)?;
    if crc32fast::hash(json) != crc {
        return None;
    }
    let record = serde_json::from_slice(json).ok()?;
    Some((record, start + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64) -> Record {
        crate::store::record::sample(seq)
    }

    fn line(records: &[Record]) -> Vec<u8> {
        let mut buf = Vec::new();
        for r in records {
            encode(r, &mut buf).unwrap();
        }
        buf.pop(); // decode_line gets lines without their `\n`
        buf
    }

    #[test]
    fn a_fragment_before_a_record_costs_only_the_fragment() {
        let whole = line(&[record(1)]);
        let mut glued = whole[..whole.len() / 2].to_vec();
        glued.extend(line(&[record(2)]));
        let mut out = Vec::new();
        assert_eq!(decode_line(&glued, &mut out), 1);
        assert_eq!(out, vec![record(2)]);
    }

    #[test]
    fn a_record_missing_only_its_newline_is_kept() {
        let mut two = line(&[record(1)]);
        two.extend(line(&[record(2)]));
        let mut out = Vec::new();
        assert_eq!(decode_line(&two, &mut out), 0);
        assert_eq!(out, vec![record(1), record(2)]);
    }

    #[test]
    fn a_flipped_bit_is_caught_by_the_checksum() {
        let mut bad = line(&[record(1)]);
        let last = bad.len() - 3;
        bad[last] ^= 0x01;
        let mut out = Vec::new();
        assert_eq!(decode_line(&bad, &mut out), 1);
        assert!(out.is_empty());
    }

    #[test]
    fn the_old_format_still_reads() {
        let old = serde_json::to_vec(&record(7)).unwrap();
        let mut out = Vec::new();
        assert_eq!(decode_line(&old, &mut out), 0);
        assert_eq!(out, vec![record(7)]);
        let mut torn_old = old[..10].to_vec();
        torn_old.extend(line(&[record(8)]));
        out.clear();
        assert_eq!(decode_line(&torn_old, &mut out), 1);
        assert_eq!(out, vec![record(8)]);
    }
}
