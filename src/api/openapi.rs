//! `GET /api/v1/openapi.yaml`: the OpenAPI 3.1 description of this API
//! (`openapi/openapi.yaml` in the repository, built in), for clients, code generators
//! and the schemathesis run of CI (tests/openapi.rs).

use bytes::Bytes;
use hyper::{Request, Response, StatusCode};

use crate::context::Context;
use crate::http::response::{self, Body};

pub const PATH: &str = "/api/v1/openapi.yaml";

const DESCRIPTION: &str = include_str!("../../openapi/openapi.yaml");

/// `GET /api/v1/openapi.yaml`
pub fn get(_: &Context, _: &Request<Bytes>) -> Response<Body> {
    response::bytes(
        StatusCode::OK,
        "application/yaml; charset=utf-8",
        DESCRIPTION,
    )
}
