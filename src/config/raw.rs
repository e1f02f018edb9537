//! The YAML shapes exactly as written (serde), before validation.
//!
//! Unknown keys are errors everywhere; values that need checking beyond their type
//! (addresses, durations) stay strings with their place so that every problem can be
//! reported at once, with its line and column.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::probe::ProbeOverrides;

/// One inventory file: a list of regions.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryFile {
    pub regions: Vec<RawRegion>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRegion {
    pub name: Spanned<String>,
    #[serde(default)]
    pub probe: ProbeOverrides,
    #[serde(default)]
    pub branches: Vec<RawBranch>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBranch {
    pub name: Spanned<String>,
    pub lat: Option<Spanned<f64>>,
    pub lon: Option<Spanned<f64>>,
    #[serde(default)]
    pub probe: ProbeOverrides,
    #[serde(default)]
    pub devices: Vec<RawDevice>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDevice {
    pub name: Spanned<String>,
    pub address: Spanned<String>,
    pub kind: Spanned<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub probe: ProbeOverrides,
}
