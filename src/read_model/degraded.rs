//! What a `degraded` condition says on a surface: the window's figures that raised it
//! and which thresholds they are above, written the same in the device JSON, the live
//! feed and the pages.

use serde::Serialize;

use crate::state::degraded::Degraded;

/// `degraded_because`: mean RTT of the window's replies (ms), loss over its requests
/// (0.0..=1.0, as the device's `loss`), and the thresholds crossed (`rtt`, `loss`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Because {
    pub rtt_ms: Option<f64>,
    pub loss: f64,
    pub above: Vec<&'static str>,
}

impl Because {
    pub fn of(d: &Degraded) -> Because {
        let mut above = Vec::new();
        if d.above.rtt {
            above.push("rtt");
        }
        if d.above.loss {
            above.push("loss");
        }
        Because {
            rtt_ms: d.figures.rtt_us.map(|us| f64::from(us) / 1000.0),
            loss: d.figures.loss(),
            above,
        }
    }

    /// For a badge's title: `rtt 250.0 ms, loss 30.0%`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(rtt) = self.rtt_ms {
            parts.push(format!("rtt {rtt:.1} ms"));
        }
        parts.push(format!("loss {:.1}%", self.loss * 100.0));
        parts.join(", ")
    }
}
