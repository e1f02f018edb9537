//! `/metrics?shard=K/N`: one of N slices of the per-device families, for fleets whose
//! whole exposition is bigger than a scraper takes in one body (VictoriaMetrics refuses
//! bodies over `-promscrape.maxScrapeSize`, 16 MiB by default, uncompressed: about
//! 25,000 devices). A device is in the slice its name hashes to (xxh3, stable across
//! versions and restarts), so each device's series come from one target only; the
//! appliance's own families and the fleet totals are in slice 1 alone, so no two
//! targets write the same series. `/metrics` without `shard` is everything, as before.
//!
//! A scrape config gives each slice as a target label `__param_shard` (docs/metrics.md).

use xxhash_rust::xxh3::xxh3_64;

/// Most slices: 64 × 25,000 devices is more than one appliance probes.
pub const MAX_SHARDS: u16 = 64;

/// Slice `index` (0-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shard {
    index: u16,
    count: u16,
}

impl Shard {
    /// `K/N`, 1 ≤ K ≤ N ≤ [`MAX_SHARDS`].
    pub fn parse(text: &str) -> Result<Shard, String> {
        let bad = || {
            format!(
                "shard {text:?} is not K/N with 1 ≤ K ≤ N ≤ {MAX_SHARDS} (e.g. shard=2/4: the second of four slices)"
            )
        };
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let (k, n): (u16, u16) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if k == 0 || k > n || n > MAX_SHARDS {
            return Err(bad());
        }
        Ok(Shard {
            index: k - 1,
            count: n,
        })
    }

    /// The `shard` parameter of a query string, if any.
    pub fn of_query(query: Option<&str>) -> Result<Option<Shard>, String> {
        let mut shard = None;
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            if key == "shard" {
                if shard.is_some() {
                    return Err("give shard once".into());
                }
                shard = Some(Shard::parse(&value)?);
            }
        }
        Ok(shard)
    }

    /// Whether the device named `name` is in this slice.
    pub fn holds(self, name: &str) -> bool {
        xxh3_64(name.as_bytes()) % u64::from(self.count) == u64::from(self.index)
    }

    /// How many slices there are.
    pub fn count(self) -> u16 {
        self.count
    }

    /// The slice that also carries the appliance's own families and the totals.
    pub fn is_first(self) -> bool {
        self.index == 0
    }
}

/// Whether `shard` (None: the whole exposition) holds device `name`.
pub fn holds(shard: Option<Shard>, name: &str) -> bool {
    shard.is_none_or(|s| s.holds(name))
}

/// Whether `shard` carries the appliance's own families and the fleet totals.
pub fn has_totals(shard: Option<Shard>) -> bool {
    shard.is_none_or(Shard::is_first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_k_of_n_and_refuses_the_rest() {
        assert_eq!(Shard::parse("1/1").unwrap(), Shard { index: 0, count: 1 });
        assert_eq!(Shard::parse("3/4").unwrap(), Shard { index: 2, count: 4 });
        for bad in ["0/4", "5/4", "1/65", "1", "a/b", "", "-1/2", "1/0"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Shard::of_query(None).unwrap(), None);
        assert_eq!(
            Shard::of_query(Some("shard=2%2F3")).unwrap(),
            Some(Shard { index: 1, count: 3 })
        );
        assert!(Shard::of_query(Some("shard=1/2&shard=2/2")).is_err());
    }

    #[test]
    fn every_device_is_in_exactly_one_slice_and_slices_are_even() {
        let names: Vec<String> = (0..20_000)
            .map(|i| format!("tbilisi-b{i:05}-atm"))
            .collect();
        let shards: Vec<Shard> = (1..=4)
            .map(|k| Shard::parse(&format!("{k}/4")).unwrap())
            .collect();
        let mut per = [0usize; 4];
        for name in &names {
            let holding: Vec<_> = shards.iter().filter(|s| s.holds(name)).collect();
            assert_eq!(holding.len(), 1, "{name}");
            per[holding[0].index as usize] += 1;
        }
        for n in per {
            assert!((4_700..=5_300).contains(&n), "uneven: {per:?}");
        }
    }

    #[test]
    fn the_slice_of_a_name_does_not_change_between_versions() {
        // xxh3 is a specified hash: a device keeps its target across upgrades. The
        // slices below are Python's `xxhash.xxh3_64_intdigest(name) % 7`, plus one.
        for (name, k) in [("atm-01", 7), ("router-1", 1), ("ბანკომატი", 5)] {
            let holding: Vec<u16> = (1..=7)
                .filter(|k| Shard::parse(&format!("{k}/7")).unwrap().holds(name))
                .collect();
            assert_eq!(holding, [k], "{name}");
        }
    }
}
