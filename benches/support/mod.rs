//! What the benchmarks share: the inventory they run on, and quantiles.
#![allow(dead_code)] // each bench uses a part

/// An inventory of `n` loopback devices (a multiple of 1,000): 10 regions of 100
/// branches, kinds k0..k5.
pub fn inventory(n: usize) -> String {
    let mut s = String::from("regions:\n");
    for r in 0..10 {
        s.push_str(&format!(
            "  - name: region-{r}\n    probe: {{ down_after: 1, up_after: 1 }}\n    branches:\n"
        ));
        for b in 0..100 {
            s.push_str(&format!(
                "      - name: r{r}-b{b}\n        lat: {}\n        lon: {}\n        devices:\n",
                40.0 + r as f64 * 0.3,
                40.0 + b as f64 * 0.05
            ));
            for d in 0..n / 1000 {
                let i = r * (n / 10) + b * (n / 1000) + d;
                s.push_str(&format!(
                    "          - {{ name: dev-{i}, address: 127.{}.{}.{}, kind: k{} }}\n",
                    80 + i / 65536,
                    i / 256 % 256,
                    i % 256,
                    d % 6
                ));
            }
        }
    }
    s
}

/// The `q` quantile of `sorted`.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}
