//! JSON Schemas (draft 2020-12) of the inventory files and of `wardops.yaml`, for
//! editors that validate YAML as it is typed (yaml-language-server: a
//! `# yaml-language-server: $schema=…` line, or its `yaml.schemas` setting).
//! `wardops schema inventory|settings` prints them; `schema/` in the repository holds
//! the same text.
//!
//! A schema checks shape: the keys each mapping may have (the parser's own key lists:
//! a test holds them equal), which are required, the type and range of each value.
//! What needs the whole inventory (duplicate names and addresses, `parents` that exist
//! and form no cycle) or several values at once (a probe that fits its interval) is
//! `wardops check`'s. Values are as loose as the parser reads them: a number may be
//! quoted, a boolean may be `yes`/`no`/`on`/`off`, an empty section is null.

use serde_json::{Value, json};

use super::snmp::read as snmp;
use super::{degraded, maintenance, probe, raw, settings};

const DRAFT: &str = "https://json-schema.org/draft/2020-12/schema";

/// A duration of the configuration (`250ms`, `10s`, `1m30s`, `4h`).
fn duration(description: &str) -> Value {
    json!({
        "type": "string",
        "pattern": "^\\s*([0-9]+(ms|s|m|h))+\\s*$",
        "description": description,
    })
}

/// A whole number from `min` to `max`, plain or quoted.
fn integer(min: u64, max: u64, description: &str) -> Value {
    json!({
        "anyOf": [
            { "type": "integer", "minimum": min, "maximum": max },
            { "type": "string", "pattern": "^\\s*[0-9]+\\s*$" },
        ],
        "description": description,
    })
}

/// A number from `min` to `max`, plain or quoted.
fn number(min: f64, max: f64, description: &str) -> Value {
    json!({
        "anyOf": [
            { "type": "number", "minimum": min, "maximum": max },
            { "type": "string", "pattern": "^\\s*-?[0-9]+(\\.[0-9]+)?\\s*$" },
        ],
        "description": description,
    })
}

/// `true`/`false`, or YAML 1.1's `yes`/`no`/`on`/`off` in any case.
fn boolean(description: &str) -> Value {
    json!({
        "anyOf": [
            { "type": "boolean" },
            { "type": "string", "pattern": "^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|[Yy][Ee][Ss]|[Nn][Oo]|[Oo][Nn]|[Oo][Ff][Ff])$" },
        ],
        "description": description,
    })
}

/// Text, non-empty, without control characters.
fn text(description: &str) -> Value {
    json!({
        "type": "string",
        "minLength": 1,
        "pattern": "^[^\\u0000-\\u001f\\u007f]+$",
        "description": description,
    })
}

/// An http(s) URL with no user or password in it.
fn url(description: &str) -> Value {
    json!({
        "type": "string",
        "pattern": "^https?://[^\\s@]+$",
        "maxLength": 2048,
        "description": description,
    })
}

/// One name or a list of them.
fn one_or_list(description: &str) -> Value {
    json!({
        "anyOf": [
            { "type": "string" },
            { "type": "array", "items": { "type": "string" } },
        ],
        "description": description,
    })
}

fn list_of(item: Value, description: &str) -> Value {
    json!({ "type": "array", "items": item, "description": description })
}

/// A mapping of exactly `keys` (the parser's list), each described in `properties`
/// (which must name them all: see the tests), `required` among them; null (an empty
/// section) too unless some key is required.
fn mapping(keys: &[&str], properties: Value, required: &[&str], description: &str) -> Value {
    debug_assert_eq!(
        {
            let mut k: Vec<&str> = keys.to_vec();
            k.sort_unstable();
            k
        },
        {
            let mut k: Vec<&str> = properties
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            k.sort_unstable();
            k
        },
        "{description}"
    );
    let object = json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    });
    if required.is_empty() {
        json!({ "anyOf": [object, { "type": "null" }], "description": description })
    } else {
        let mut object = object;
        object["description"] = json!(description);
        object
    }
}

fn probe() -> Value {
    mapping(
        probe::PROBE_KEYS,
        json!({
            "interval": duration("time between the starts of two probes while the device answers (100ms – 1h; default 10s)"),
            "timeout": duration("how long each echo request waits for its reply (10ms – 1m; default 1s)"),
            "packets": integer(1, 10, "echo requests per probe (default 2)"),
            "packet_spacing": duration("gap between the echo requests of one probe (0s – 10s; default 200ms)"),
            "down_after": integer(1, 100, "consecutive failed probes before the device is down (default 2)"),
            "up_after": integer(1, 100, "consecutive successful probes before it is up again (default 1)"),
            "retry_interval": duration("after a failed probe the next comes this soon (100ms – 1h; default 1s)"),
            "degraded": mapping(
                degraded::KEYS,
                json!({
                    "rtt_above": {
                        "type": "string",
                        "pattern": "^\\s*(([0-9]+(ms|s|m|h))+|off)\\s*$",
                        "description": "degraded while the window's mean RTT is above this (1ms – 1m), or off",
                    },
                    "loss_above": {
                        "type": "string",
                        "pattern": "^\\s*([0-9]+(\\.[0-9])?\\s*%|off)\\s*$",
                        "description": "degraded while the window's loss is above this (0% – 99.9%), or off",
                    },
                    "window": duration("the span the figures are taken over (1s – 24h; default 5m)"),
                }),
                &[],
                "RTT and loss thresholds: a warning beside the status",
            ),
        }),
        &[],
        "probe settings; each level of the cascade (settings, region, branch, device) overrides the one above",
    )
}

fn windows() -> Value {
    let window = json!({
        "type": "object",
        "properties": {
            "start": text("one-off: local start, 2026-12-06T22:00"),
            "end": text("one-off: local end (exclusive)"),
            "days": list_of(
                json!({ "type": "string", "pattern": "^([Mm][Oo][Nn]|[Tt][Uu][Ee]|[Ww][Ee][Dd]|[Tt][Hh][Uu]|[Ff][Rr][Ii]|[Ss][Aa][Tt]|[Ss][Uu][Nn])[A-Za-z]*$" }),
                "weekly: the days (mon … sun, or their full names)",
            ),
            "from": { "type": "string", "pattern": "^\\s*[0-9]{1,2}:[0-9]{2}\\s*$", "description": "weekly: local start, HH:MM" },
            "to": { "type": "string", "pattern": "^\\s*[0-9]{1,2}:[0-9]{2}\\s*$", "description": "weekly: local end, HH:MM (not after from: the next day)" },
            "cron": text("cron: five fields, minute hour day-of-month month day-of-week"),
            "duration": duration("cron: how long each occurrence lasts (1m – 7 days)"),
            "zone": text("the IANA zone of its local times (default: maintenance.zone)"),
            "reason": { "type": "string", "maxLength": 256, "description": "shown with the window" },
        },
        "additionalProperties": false,
        // Exactly one kind of window.
        "oneOf": [
            { "required": ["start", "end"], "not": { "anyOf": [{ "required": ["days"] }, { "required": ["from"] }, { "required": ["to"] }, { "required": ["cron"] }, { "required": ["duration"] }] } },
            { "required": ["days", "from", "to"], "not": { "anyOf": [{ "required": ["start"] }, { "required": ["end"] }, { "required": ["cron"] }, { "required": ["duration"] }] } },
            { "required": ["cron", "duration"], "not": { "anyOf": [{ "required": ["start"] }, { "required": ["end"] }, { "required": ["days"] }, { "required": ["from"] }, { "required": ["to"] }] } },
        ],
    });
    debug_assert_eq!(
        window["properties"].as_object().unwrap().len(),
        maintenance::WINDOW_KEYS.len()
    );
    json!({
        "anyOf": [list_of(window, ""), { "type": "null" }],
        "description": "maintenance windows: an outage that begins inside one opens its alert at its end",
    })
}

/// A reference to one of the shared definitions ([`defs`]).
fn shared(name: &str) -> Value {
    json!({ "$ref": format!("#/$defs/{name}") })
}

/// What several levels share, defined once per schema.
fn defs() -> Value {
    json!({ "probe": probe(), "maintenance": windows(), "parents": parents(), "snmp": snmp() })
}

/// A key the parser knows only to refuse it, saying why.
fn refused(why: &str) -> Value {
    json!({ "not": {}, "description": why })
}

fn snmp() -> Value {
    let secret = |what: &str| text(&format!("{what}, never in the YAML"));
    let mut properties = json!({
        "version": {
            "anyOf": [{ "const": 3 }, { "enum": ["2c", "3"] }],
            "description": "2c (default) or 3",
        },
        "community_env": secret("v2c: the variable holding the community"),
        "community_file": secret("v2c: the file holding the community (relative to this file's directory)"),
        "port": integer(1, 65535, "the agent's UDP port (default 161)"),
        "timeout": duration("how long each request waits for its answer (100ms – 1m; default 2s)"),
        "retries": integer(0, 5, "how many times a request is sent again after a timeout (default 1)"),
        "interval": duration("time between two polls (1s – 1h; default 30s)"),
        "user": text("v3: the USM user name"),
        "auth": {
            "type": "string",
            "pattern": "^\\s*([Ss][Hh][Aa](224|256|384|512))\\s*$",
            "description": "v3: sha224, sha256, sha384 or sha512 (MD5 and SHA-1 are refused)",
        },
        "auth_key_env": secret("v3: the variable holding the authentication key"),
        "auth_key_file": secret("v3: the file holding the authentication key (relative to this file's directory)"),
        "privacy": {
            "type": "string",
            "pattern": "^\\s*([Aa][Ee][Ss](128|192|256)?)\\s*$",
            "description": "v3: aes128, aes192 or aes256; absent: authNoPriv",
        },
        "privacy_key_env": secret("v3: the variable holding the privacy key"),
        "privacy_key_file": secret("v3: the file holding the privacy key (relative to this file's directory)"),
    });
    for (key, instead) in snmp::LITERAL_SECRETS {
        properties[*key] = refused(&format!(
            "secrets are not written in the inventory: use {instead}"
        ));
    }
    mapping(
        snmp::SNMP_KEYS,
        properties,
        &[],
        "SNMP polling of the ISP uplinks; a device with snmp: or uplinks: is polled, each key inherited region → branch → device",
    )
}

/// A region's ifAlias rules.
fn rules() -> Value {
    let rule = mapping(
        snmp::RULE_KEYS,
        json!({
            "alias": text("an ifAlias pattern: * any run of characters, ? any one, case ignored"),
            "isp": text("the ISP an interface whose alias matches carries"),
        }),
        &["alias", "isp"],
        "",
    );
    json!({
        "anyOf": [list_of(rule, ""), { "type": "null" }],
        "description": "ifAlias patterns to ISP names, in order (the first that matches wins), for the region's polled devices without a list of their own",
    })
}

/// A device's own uplinks.
fn uplinks() -> Value {
    let interface = |key: &str| {
        let others: Vec<Value> = ["name", "descr", "alias", "index"]
            .iter()
            .filter(|k| **k != key)
            .map(|k| json!({ "required": [k] }))
            .collect();
        json!({ "required": [key], "not": { "anyOf": others } })
    };
    let mut uplink = mapping(
        snmp::UPLINK_KEYS,
        json!({
            "isp": text("the ISP this interface carries, once per device"),
            "name": text("the interface by ifName, exactly (Gi0/0)"),
            "descr": text("the interface by ifDescr, exactly"),
            "alias": text("the interface by ifAlias, exactly"),
            "index": integer(1, u64::from(u32::MAX), "the interface by ifIndex"),
        }),
        &["isp"],
        "",
    );
    uplink["oneOf"] = json!([
        interface("name"),
        interface("descr"),
        interface("alias"),
        interface("index"),
    ]);
    json!({
        "type": "array",
        "items": uplink,
        "minItems": 1,
        "description": "the device's uplinks: an ISP and one of name, descr, alias or index each",
    })
}

fn parents() -> Value {
    json!({
        "anyOf": [list_of(text(""), ""), { "type": "null" }],
        "description": "devices this one depends on: while all are down it is unreachable, not down",
    })
}

/// The schema of one inventory file.
pub fn inventory() -> Value {
    let device = mapping(
        raw::DEVICE_KEYS,
        json!({
            "name": text("unique in the whole inventory"),
            "address": text("IPv4 or IPv6"),
            "kind": text("free text: router, switch, atm, pos, camera, …"),
            "labels": {
                "anyOf": [
                    {
                        "type": "object",
                        "additionalProperties": {
                            "anyOf": [
                                { "type": "string", "pattern": "^[^\\u0000-\\u001f\\u007f]*$" },
                                { "type": ["number", "boolean"] },
                            ],
                        },
                    },
                    { "type": "null" },
                ],
                "description": "string → string",
            },
            "probe": shared("probe"),
            "parents": shared("parents"),
            "maintenance": shared("maintenance"),
            "snmp": shared("snmp"),
            "uplinks": uplinks(),
        }),
        &["name", "address", "kind"],
        "a device",
    );
    let branch = mapping(
        raw::BRANCH_KEYS,
        json!({
            "name": text("unique in its region"),
            "lat": number(-90.0, 90.0, "latitude"),
            "lon": number(-180.0, 180.0, "longitude"),
            "probe": shared("probe"),
            "devices": { "anyOf": [list_of(device, ""), { "type": "null" }] },
            "parents": shared("parents"),
            "maintenance": shared("maintenance"),
            "snmp": shared("snmp"),
            "uplinks": refused("not on a branch: alias rules belong on its region, a device's own list on the device"),
        }),
        &["name"],
        "a branch",
    );
    let region = mapping(
        raw::REGION_KEYS,
        json!({
            "name": text("unique in the inventory"),
            "probe": shared("probe"),
            "branches": { "anyOf": [list_of(branch, ""), { "type": "null" }] },
            "parents": shared("parents"),
            "maintenance": shared("maintenance"),
            "snmp": shared("snmp"),
            "uplinks": rules(),
        }),
        &["name"],
        "a region",
    );
    let mut file = mapping(
        raw::FILE_KEYS,
        json!({ "regions": list_of(region, "the regions of this file") }),
        &["regions"],
        "",
    );
    file["$schema"] = json!(DRAFT);
    file["$defs"] = defs();
    file["$id"] = json!("https://wardops.example/schema/inventory.schema.json");
    file["title"] = json!("wardops inventory file");
    file["description"] = json!(
        "One file of the inventory directory (docs/configuration.md, \"Inventory\"). Names, addresses and parents across files are checked by `wardops check`."
    );
    file
}

fn notifications() -> Value {
    use settings::notify::raw as n;
    let secret = |what: &str| text(&format!("{what}, never in the YAML"));
    let receiver = mapping(
        n::RECEIVER_KEYS,
        json!({
            "name": { "type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$", "description": "unique" },
            "alertmanager": mapping(n::ALERTMANAGER_KEYS, json!({
                "urls": one_or_list("every URL gets every alert"),
                "resend_interval": duration("still-firing alerts are posted again this often (1s – 1h; default 1m)"),
                "timeout": duration("100ms – 5m; default 5s"),
            }), &["urls"], "an Alertmanager"),
            "webhook": mapping(n::WEBHOOK_KEYS, json!({
                "url": text("http:// or https://"),
                "secret_env": secret("the variable holding the HMAC secret"),
                "secret_file": secret("the file holding the HMAC secret"),
                "timeout": duration("default 5s"),
            }), &["url"], "a webhook"),
            "email": mapping(n::EMAIL_KEYS, json!({
                "smtp": mapping(n::SMTP_KEYS, json!({
                    "host": text("the SMTP server"),
                    "port": integer(1, 65535, "default 587 (starttls), 465 (tls), 25 (none)"),
                    "tls": { "enum": ["starttls", "tls", "none"] },
                }), &["host"], "the relay"),
                "username": text("with password_env or password_file"),
                "password_env": secret("the variable holding the password"),
                "password_file": secret("the file holding the password"),
                "from": text("the sender"),
                "to": one_or_list("one address or a list"),
                "timeout": duration("default 10s"),
            }), &["smtp", "from", "to"], "e-mail"),
        }),
        &["name"],
        "a receiver: exactly one of alertmanager, webhook, email",
    );
    let route = mapping(
        n::ROUTE_KEYS,
        json!({
            "receivers": one_or_list("the receivers this route sends to"),
            "match": mapping(n::MATCH_KEYS, json!({
                "region": one_or_list(""),
                "branch": one_or_list(""),
                "kind": one_or_list(""),
                "severity": one_or_list("critical, warning, info"),
                "condition": one_or_list("device_down, flapping, degraded, uplink_down"),
                "device": one_or_list(""),
                "labels": { "anyOf": [{ "type": "object", "additionalProperties": { "anyOf": [{ "type": ["string", "number", "boolean"] }, { "type": "array" }] } }, { "type": "null" }] },
            }), &[], "every field given must match; a list matches any of its values"),
            "group_by": { "anyOf": [list_of(json!({ "type": "string" }), ""), { "type": "null" }], "description": "default [region, branch]" },
            "group_wait": duration("0 – 1h; default 5s"),
            "group_interval": duration("0 – 24h; default 1m"),
            "repeat_interval": duration("1s – 720h; default 4h"),
            "send_resolved": boolean("default true"),
            "continue": boolean("default false"),
        }),
        &["receivers"],
        "a route",
    );
    mapping(
        n::NOTIFY_KEYS,
        json!({
            "external_url": text("each notice links /devices/<name> under it"),
            "max_replay_age": duration("older undelivered messages are summarised (1s – 720h)"),
            "max_backoff": duration("the longest pause between two attempts (1s – 1h)"),
            "receivers": { "anyOf": [list_of(receiver, ""), { "type": "null" }] },
            "routes": { "anyOf": [list_of(route, ""), { "type": "null" }] },
        }),
        &[],
        "receivers and routes (docs/configuration.md, \"Notifications\")",
    )
}

/// The schema of `wardops.yaml`.
pub fn settings() -> Value {
    let tls = mapping(
        settings::tls::TLS_KEYS,
        json!({
            "cert_file": text("PEM: the certificate, then its chain"),
            "key_file": text("PEM private key, not encrypted"),
            "min_version": { "enum": ["TLS12", "TLS13"] },
            "max_version": { "enum": ["TLS12", "TLS13"] },
        }),
        &["cert_file", "key_file"],
        "HTTPS on listen",
    );
    let oidc = mapping(
        settings::access::oidc::KEYS,
        json!({
            "name": text("Sign in with <name>"),
            "issuer": text("the provider, an http(s) URL"),
            "client_id": text("this appliance's client"),
            "client_secret_file": text("the client secret's file"),
            "client_secret_env": text("the client secret's variable"),
            "redirect_url": text("…/login/oidc/callback as the browser reaches it"),
            "scopes": list_of(json!({ "type": "string" }), "default [openid, profile, email]"),
            "username_claim": text("default preferred_username"),
            "role_claim": text("default groups"),
            "roles": {
                "type": "object",
                "properties": {
                    "admin": one_or_list(""),
                    "operator": one_or_list(""),
                    "viewer": one_or_list(""),
                },
                "additionalProperties": false,
                "description": "claim values for each role",
            },
            "regions_claim": text("a list claim of the regions the user sees"),
        }),
        settings::access::oidc::REQUIRED,
        "OpenID Connect sign-in",
    );
    let mut root = mapping(
        settings::SETTINGS_KEYS,
        json!({
            "listen": text("address:port (default 127.0.0.1:5001)"),
            "database_url": { "type": "string", "pattern": "^(postgres://|postgresql://|sqlite:)", "description": "default sqlite://data/wardops.db" },
            "inventory": text("the inventory directory (default inventory)"),
            "probe": shared("probe"),
            "http": mapping(settings::web::HTTP_KEYS, json!({
                "max_connections": integer(1, 100_000, "default 1024"),
                "max_connections_per_client": integer(1, 100_000, "default max_connections"),
                "tls_server_config": tls,
            }), &[], "the HTTP server"),
            "reload": mapping(settings::reload::RELOAD_KEYS, json!({
                "check_interval": duration("1s – 24h; default 30s"),
                "http_endpoint": boolean("allow POST /-/reload (default false)"),
                "allow_empty": boolean("accept an inventory with no devices on reload (default false)"),
                "max_removed_share": number(0.0, 1.0, "refuse a reload removing more than this share (default 0.5)"),
            }), &[], "hot reload"),
            "data_dir": text("spool, snapshot, dead letters (default data)"),
            "retention": { "type": "string", "pattern": "^\\s*([0-9]+(ms|s|m|h|d))+\\s*$", "description": "1d – 36500d (default 400d)" },
            "alerts": mapping(settings::store::ALERTS_KEYS, json!({
                "flapping_transitions": integer(2, 1000, "default 3"),
                "flapping_window": duration("1s – 168h; default 5m"),
            }), &[], "alert rules"),
            "web": mapping(settings::web::WEB_KEYS, json!({
                "max_event_streams": integer(1, 100_000, "default 1000"),
                "victoriametrics_url": url("the old name of victoriametrics.url"),
                "display_zone": text("an IANA zone (default UTC)"),
                "display_name_label": text("a label key shown in place of the name"),
            }), &[], "the pages"),
            "maintenance": mapping(settings::maintenance::MAINTENANCE_KEYS, json!({
                "zone": text("an IANA zone (default UTC)"),
            }), &[], "maintenance windows"),
            "notifications": notifications(),
            "reports": mapping(settings::reports::REPORTS_KEYS, json!({
                "sla": {
                    "anyOf": [
                        list_of(
                            mapping(settings::reports::RULE_KEYS, json!({
                                "kind": text("devices of this kind"),
                                "label": {
                                    "type": "object",
                                    "additionalProperties": { "type": ["string", "number", "boolean"] },
                                    "description": "devices with these labels",
                                },
                                "target": number(0.0, 100.0, "availability percent, e.g. 99.9"),
                            }), &["target"], "an SLA target; the first rule matching a device applies"),
                            "",
                        ),
                        { "type": "null" },
                    ],
                },
            }), &[], "availability reports"),
            "cluster": mapping(settings::cluster::KEYS, json!({
                "member_id": {
                    "type": "string",
                    "pattern": "^[A-Za-z0-9._:-]{1,64}$",
                    "description": "this member's id, unique in the cluster (or WARDOPS_CLUSTER_MEMBER_ID)",
                },
                "url": url("where this member's pages are, as the others show it"),
                "lease_ttl": duration("2s – 60s; default 6s"),
                "fence_margin": duration("100ms – under lease_ttl / 3; default lease_ttl / 6"),
                "redis_url": {
                    "type": "string",
                    "pattern": "^rediss?://[^\\s@]+$",
                    "description": "the live event feed's Redis, no password (WARDOPS_REDIS_URL may hold one)",
                },
            }), &[], "this appliance as a member of a cluster (PostgreSQL only)"),
            "victoriametrics": mapping(settings::victoriametrics::KEYS, json!({
                "url": url("the query API device pages read history from"),
                "timeout": duration("100ms – 20s; default 5s"),
            }), &[], "device history"),
            "access": mapping(settings::access::KEYS, json!({
                "users_file": text("the users file"),
                "anonymous": { "enum": ["viewer", "off"] },
                "session_idle": duration("1m – 7d; default 1h"),
                "session_absolute": duration("1m – 30d; default 24h"),
                "login_failures_per_user": integer(1, 1000, "default 5"),
                "login_failures_per_address": integer(1, 1000, "default 20"),
                "login_window": duration("10s – 24h; default 5m"),
                "oidc": oidc,
            }), &[], "users and access"),
        }),
        &[],
        "",
    );
    root["$schema"] = json!(DRAFT);
    root["$defs"] = json!({ "probe": probe() });
    root["$id"] = json!("https://wardops.example/schema/settings.schema.json");
    root["title"] = json!("wardops settings (wardops.yaml)");
    root["description"] = json!(
        "docs/configuration.md, \"Settings\". Every key is optional; ranges and the checks across keys are `wardops check`'s."
    );
    root
}

/// `schema` as text: pretty, keys sorted at every level (whatever order the JSON map
/// keeps, which features of other crates may change), ending in a newline.
pub fn to_text(schema: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.clone(), sorted(v)))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    let mut text = serde_json::to_string_pretty(&sorted(schema)).expect("a JSON value");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mapping_names_exactly_the_parsers_keys() {
        // `mapping` asserts it (debug builds, as tests run): building them is the test.
        let inventory = inventory();
        let settings = settings();
        assert_eq!(inventory["required"], json!(["regions"]));
        assert!(settings["anyOf"][0]["properties"]["notifications"].is_object());
    }
}
