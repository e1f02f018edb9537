//! `GET /infrastructure`: regions → branches with up/down counts, worst first, the down
//! devices of each branch named, and the branches with coordinates on a map (a branch
//! pin counts its down and its unreachable devices apart).

use bytes::Bytes;
use chrono::{DateTime, Utc};
use hyper::{Request, Response};
use minijinja::context;
use serde::Serialize;

use super::Pages;
use super::chart::{Pin, map};
use super::view::{self, Counts, device_url};
use crate::http::Body;
use crate::state::{Snapshot, Status};

/// Down devices named per branch; the rest are counted.
const DOWN_NAMED: usize = 5;

#[derive(Serialize)]
struct DownView<'a> {
    name: &'a str,
    url: String,
}

#[derive(Serialize)]
struct BranchView<'a> {
    name: &'a str,
    counts: Counts,
    down: Vec<DownView<'a>>,
    more_down: usize,
}

#[derive(Serialize)]
struct RegionView<'a> {
    name: &'a str,
    counts: Counts,
    branches: Vec<BranchView<'a>>,
}

/// `GET /infrastructure`
pub fn get(web: &Pages, req: &Request<Bytes>) -> Response<Body> {
    let state = &web.ctx.state;
    render(web, &web.ctx.view(req).snapshot, state.clock().now())
}

pub fn render(web: &Pages, snapshot: &Snapshot, now: DateTime<Utc>) -> Response<Body> {
    let inv = &snapshot.inventory;
    let mut pins = Vec::new();
    let mut regions: Vec<RegionView> = inv
        .regions
        .iter()
        .map(|r| {
            let mut region_counts = Counts::default();
            let mut branches: Vec<BranchView> = r
                .branches
                .iter()
                .map(|b| {
                    let mut counts = Counts::default();
                    let mut down = Vec::new();
                    for &i in &b.devices {
                        let st = &snapshot.status[i];
                        counts.add_device(st);
                        region_counts.add_device(st);
                        let s = st.status;
                        if s == Status::Down && down.len() < DOWN_NAMED {
                            let name = &*inv.devices[i].name;
                            down.push(DownView {
                                name,
                                url: device_url(name),
                            });
                        }
                    }
                    if let (Some(lat), Some(lon)) = (b.lat, b.lon) {
                        pins.push(Pin {
                            region: &r.name,
                            branch: &b.name,
                            lat,
                            lon,
                            down: counts.down,
                            unreachable: counts.unreachable,
                            total: counts.total,
                        });
                    }
                    BranchView {
                        name: &b.name,
                        more_down: counts.down - down.len(),
                        counts,
                        down,
                    }
                })
                .collect();
            branches.sort_by_key(|b| b.counts.badness());
            RegionView {
                name: &r.name,
                counts: region_counts,
                branches,
            }
        })
        .collect();
    regions.sort_by_key(|r| r.counts.badness());
    view::page(
        web,
        "infrastructure",
        snapshot,
        now,
        view::events_url(None, None, None),
        context! {
            regions => view::v(regions),
            map => map(&pins).map(minijinja::Value::from_safe_string),
        },
    )
}
