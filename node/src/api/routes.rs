//! The API's routes, parsed from method + path into what the daemon's core does.
//!
//! | method | path | body | answer |
//! |---|---|---|---|
//! | GET | /v1/id | | `IdView` |
//! | GET | /v1/status | | `StatusView` |
//! | GET | /v1/contacts | | `[ContactView]` |
//! | POST | /v1/contacts | `{address, name?}` | `ContactView` |
//! | POST | /v1/contacts/{c}/verify | `{safety_number?}` | `VerifyView` |
//! | POST | /v1/contacts/{c}/accept-key | | `ContactView` |
//! | GET | /v1/groups | | `[GroupStatusView]` |
//! | POST | /v1/groups | `{name}` | `GroupStatusView` |
//! | GET | /v1/groups/{g} | | `GroupStatusView` |
//! | POST | /v1/groups/{g}/invite | `{contact}` | `GroupStatusView` |
//! | POST | /v1/groups/{g}/remove | `{member}` | `GroupStatusView` |
//! | POST | /v1/groups/{g}/update | | `GroupStatusView` |
//! | POST | /v1/groups/{g}/leave | | `{ok}` |
//! | GET | /v1/groups/{g}/messages?from=N | | `[MessageView]` |
//! | POST | /v1/groups/{g}/messages | `{text}` | `MessageView` |
//! | GET | /v1/events | | NDJSON stream of `EventView` |
//! | POST | /v1/shutdown | | `{ok}` |

use serde::Deserialize;

use super::ApiError;
use super::http::Request;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Id,
    Status,
    Contacts,
    AddContact {
        address: String,
        name: Option<String>,
    },
    Verify {
        contact: String,
        safety_number: Option<String>,
    },
    AcceptKey {
        contact: String,
    },
    Groups,
    CreateGroup {
        name: String,
    },
    GroupStatus {
        group: String,
    },
    Invite {
        group: String,
        contact: String,
    },
    Remove {
        group: String,
        member: String,
    },
    Update {
        group: String,
    },
    Leave {
        group: String,
    },
    Messages {
        group: String,
        from: u64,
    },
    Send {
        group: String,
        text: String,
    },
    Events,
    Shutdown,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddContactBody {
    address: String,
    name: Option<String>,
}
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct VerifyBody {
    safety_number: Option<String>,
}
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NameBody {
    name: String,
}
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactBody {
    contact: String,
}
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberBody {
    member: String,
}
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextBody {
    text: String,
}

fn body<T: serde::de::DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    serde_json::from_slice(&req.body).map_err(|e| ApiError::bad(format!("request body: {e}")))
}

fn optional_body<T: serde::de::DeserializeOwned + Default>(req: &Request) -> Result<T, ApiError> {
    if req.body.is_empty() {
        Ok(T::default())
    } else {
        body(req)
    }
}

/// Maps a request to a route, or says why not.
pub fn parse(req: &Request) -> Result<Route, ApiError> {
    let segments: Vec<&str> = req
        .path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let method = req.method.as_str();
    let route = match (method, segments.as_slice()) {
        ("GET", ["v1", "id"]) => Route::Id,
        ("GET", ["v1", "status"]) => Route::Status,
        ("GET", ["v1", "contacts"]) => Route::Contacts,
        ("POST", ["v1", "contacts"]) => {
            let b: AddContactBody = body(req)?;
            Route::AddContact {
                address: b.address,
                name: b.name,
            }
        }
        ("POST", ["v1", "contacts", c, "verify"]) => {
            let b: VerifyBody = optional_body(req)?;
            Route::Verify {
                contact: c.to_string(),
                safety_number: b.safety_number,
            }
        }
        ("POST", ["v1", "contacts", c, "accept-key"]) => Route::AcceptKey {
            contact: c.to_string(),
        },
        ("GET", ["v1", "groups"]) => Route::Groups,
        ("POST", ["v1", "groups"]) => Route::CreateGroup {
            name: body::<NameBody>(req)?.name,
        },
        ("GET", ["v1", "groups", g]) => Route::GroupStatus {
            group: g.to_string(),
        },
        ("POST", ["v1", "groups", g, "invite"]) => Route::Invite {
            group: g.to_string(),
            contact: body::<ContactBody>(req)?.contact,
        },
        ("POST", ["v1", "groups", g, "remove"]) => Route::Remove {
            group: g.to_string(),
            member: body::<MemberBody>(req)?.member,
        },
        ("POST", ["v1", "groups", g, "update"]) => Route::Update {
            group: g.to_string(),
        },
        ("POST", ["v1", "groups", g, "leave"]) => Route::Leave {
            group: g.to_string(),
        },
        ("GET", ["v1", "groups", g, "messages"]) => Route::Messages {
            group: g.to_string(),
            from: match req.query("from") {
                Some(v) => v
                    .parse()
                    .map_err(|_| ApiError::bad(format!("from={v:?} is not a number")))?,
                None => 0,
            },
        },
        ("POST", ["v1", "groups", g, "messages"]) => Route::Send {
            group: g.to_string(),
            text: body::<TextBody>(req)?.text,
        },
        ("GET", ["v1", "events"]) => Route::Events,
        ("POST", ["v1", "shutdown"]) => Route::Shutdown,
        _ => {
            return Err(ApiError::not_found(format!(
                "no route {method} {}; see the README's API section",
                req.path
            )));
        }
    };
    Ok(route)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, path: &str, body: &str) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            query: vec![],
            bearer: None,
            body: body.as_bytes().to_vec(),
            keep_alive: true,
        }
    }

    #[test]
    fn routes_parse_with_their_bodies() {
        assert_eq!(
            parse(&req("POST", "/v1/groups/team/messages", r#"{"text":"hi"}"#)).unwrap(),
            Route::Send {
                group: "team".into(),
                text: "hi".into()
            }
        );
        assert_eq!(
            parse(&req("POST", "/v1/contacts/bob/verify", "")).unwrap(),
            Route::Verify {
                contact: "bob".into(),
                safety_number: None
            }
        );
    }

    #[test]
    fn bad_routes_and_bodies_are_clear_errors() {
        assert_eq!(parse(&req("GET", "/v2/x", "")).unwrap_err().status, 404);
        let e = parse(&req("POST", "/v1/groups", r#"{"nam":"x"}"#)).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.contains("nam"), "{}", e.message);
        assert_eq!(
            parse(&req("POST", "/v1/groups", "not json"))
                .unwrap_err()
                .status,
            400
        );
    }
}
