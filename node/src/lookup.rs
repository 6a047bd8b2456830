//! Looking a contact up by DNS name: `chorus contact add alice.example.org`.
//!
//! Someone who owns a domain name can publish their invite code in DNS, so that others add
//! them by name instead of pasting a long code. The lookup reads the TXT record at
//! `_chorus.<name>`, checks it and returns the [`InviteCode`] in it.
//!
//! # Record format
//!
//! One TXT record at `_chorus.<name>`. Its character-strings, concatenated in order with
//! nothing in between, form the text
//!
//! ```text
//! v=chorus1 fp=<64 hex digits> code=<invite code>
//! ```
//!
//! - The text is UTF-8 and consists of `key=value` fields separated by ASCII whitespace.
//! - `v=chorus1` comes first. Records whose `v=` names another version are skipped (a future
//!   version may be published next to this one); a record that does not start with `v=` is
//!   malformed.
//! - `fp=` is the fingerprint of the identity key (64 hex digits, any case, as `chorus id`
//!   prints it without the spaces) and `code=` is the invite code, `chorus1…`, as
//!   `chorus id` prints it. Both are required, each at most once. Unknown keys are ignored.
//! - A TXT character-string holds at most 255 bytes and an invite code is longer, so the
//!   record is split into several strings of one record; where it is split does not matter
//!   (`dig` shows `"v=chorus1 fp=… code=chorus1AAAA" "BBBB…"`). [`chorus_txt_strings`] builds
//!   the strings to publish.
//!
//! Every TXT record at `_chorus.<name>` must be a Chorus record: a malformed one is an error
//! rather than skipped, and two records with different contents are refused, since picking
//! one would let whoever added the other choose who the user talks to.
//!
//! # Checks
//!
//! The invite code is decoded with [`InviteCode::decode`], which verifies the certificate's
//! signature, and the fingerprint of the certificate's identity key must equal `fp`. The
//! `fp` field lets the record be checked on its own and matches what people compare: DNS
//! only says who the domain's owner points to, it does not prove who that is, so the usual
//! safety-number verification still applies to a contact found this way.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::{Resolver, TokioResolver};
use identity_tofu::Fingerprint;

use crate::invite_code::{InviteCode, InviteCodeError};

/// The label in front of a person's name where their record lives.
pub const RECORD_PREFIX: &str = "_chorus";
/// The version tag every record starts with.
pub const RECORD_VERSION: &str = "chorus1";
/// Longest TXT character-string.
pub const MAX_TXT_STRING_LEN: usize = 255;
/// Longest domain name, in text form without the final dot.
const MAX_NAME_LEN: usize = 253;
/// Longest label of a domain name.
const MAX_LABEL_LEN: usize = 63;
/// Per-attempt timeout and attempts against a [`DnsResolverConfig::Nameserver`].
const NAMESERVER_TIMEOUT: Duration = Duration::from_secs(2);
const NAMESERVER_ATTEMPTS: usize = 2;

/// Which DNS servers to ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsResolverConfig {
    /// The system's configuration (`/etc/resolv.conf` on Unix).
    System,
    /// One name server, over UDP (TCP if an answer is truncated), with no search domains and a
    /// short timeout: for tests, and for people who run their own resolver.
    Nameserver(SocketAddr),
}

/// Why a DNS name did not give a contact.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("{name:?} is not a DNS name: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("cannot read the system's DNS configuration to look up {name}: {source}")]
    SystemConfig {
        name: String,
        #[source]
        source: Box<NetError>,
    },
    #[error("looking up {query} (the Chorus record of {name}) failed: {source}")]
    Resolver {
        name: String,
        query: String,
        #[source]
        source: Box<NetError>,
    },
    #[error("{name} publishes no Chorus record (no TXT record at {query})")]
    NoRecord { name: String, query: String },
    #[error(
        "{name} publishes {count} different Chorus records at {RECORD_PREFIX}.{name}; \
         refusing to pick one"
    )]
    Conflicting { name: String, count: usize },
    #[error("the Chorus record of {name} is malformed: {reason}")]
    Malformed { name: String, reason: String },
    #[error("the Chorus record of {name} has no {field}= field")]
    MissingField { name: String, field: &'static str },
    #[error(
        "{name} only publishes a Chorus record of version {version:?}; \
         this chorus understands {RECORD_VERSION}"
    )]
    UnsupportedVersion { name: String, version: String },
    #[error("the invite code in the Chorus record of {name} is invalid: {source}")]
    InviteCode {
        name: String,
        #[source]
        source: InviteCodeError,
    },
    #[error(
        "refusing the Chorus record of {name}: it names fingerprint {published} but its \
         invite code belongs to fingerprint {actual}"
    )]
    FingerprintMismatch {
        name: String,
        published: String,
        actual: String,
    },
}

/// The fields of a well-formed Chorus record, not yet checked against each other.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ChorusTxt {
    /// `fp=`: the fingerprint of the person's identity key.
    pub fingerprint: Fingerprint,
    /// `code=`: the invite code text, not yet decoded.
    pub code: String,
}

/// Whether `s` should be looked up in DNS: at least two labels of letters, digits and
/// hyphens (not at either end of a label), within the length limits, a final label that is
/// not all digits (so not an IPv4 address), and not an invite code.
pub fn looks_like_dns_name(s: &str) -> bool {
    name_problem(s).is_none()
}

/// What keeps `s` from being a DNS name, if anything.
fn name_problem(s: &str) -> Option<&'static str> {
    let s = s.trim();
    if InviteCode::looks_like(s) {
        return Some("it is an invite code");
    }
    let s = s.strip_suffix('.').unwrap_or(s);
    if s.is_empty() {
        return Some("it is empty");
    }
    if s.len() > MAX_NAME_LEN - RECORD_PREFIX.len() - 1 {
        return Some("it is too long");
    }
    if !s.contains('.') {
        return Some("it has no dot");
    }
    for label in s.split('.') {
        if label.is_empty() {
            return Some("it has an empty label");
        }
        if label.len() > MAX_LABEL_LEN {
            return Some("a label is longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Some("only letters, digits, hyphens and dots are allowed");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Some("a label starts or ends with a hyphen");
        }
    }
    if s.rsplit('.')
        .next()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Some("it looks like an IP address");
    }
    None
}

/// The name in canonical form: trimmed, lowercase, without the final dot.
fn normalize(name: &str) -> String {
    let name = name.trim();
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// The TXT character-strings of `code`'s record, each at most [`MAX_TXT_STRING_LEN`] bytes:
/// what to publish at `_chorus.<name>`.
pub fn chorus_txt_strings(code: &InviteCode) -> Result<Vec<Vec<u8>>, InviteCodeError> {
    let fingerprint = code.signed_certificate()?.certificate().fingerprint();
    let text = format!(
        "v={RECORD_VERSION} fp={} code={}",
        fingerprint.to_hex(),
        code.encode()
    );
    // The text is ASCII, so splitting at any byte keeps each piece meaningful.
    Ok(text
        .as_bytes()
        .chunks(MAX_TXT_STRING_LEN)
        .map(<[u8]>::to_vec)
        .collect())
}

/// Parses the TXT records found at `_chorus.<name>`: `records` holds one entry per record,
/// each the list of its character-strings. `name` is only used in error messages.
///
/// Pure: checks the syntax (see the module documentation), not the invite code.
pub fn parse_chorus_txt(name: &str, records: &[Vec<Vec<u8>>]) -> Result<ChorusTxt, LookupError> {
    let mut found = BTreeSet::new();
    let mut other_version = None;
    for strings in records {
        match parse_record(strings) {
            Ok(Record::Chorus(txt)) => {
                found.insert(txt);
            }
            Ok(Record::OtherVersion(version)) => {
                other_version.get_or_insert(version);
            }
            Err(RecordError::Malformed(reason)) => {
                return Err(LookupError::Malformed {
                    name: name.to_owned(),
                    reason,
                });
            }
            Err(RecordError::Missing(field)) => {
                return Err(LookupError::MissingField {
                    name: name.to_owned(),
                    field,
                });
            }
        }
    }
    let count = found.len();
    let mut found = found.into_iter();
    match (found.next(), count) {
        (Some(txt), 1) => Ok(txt),
        (Some(_), _) => Err(LookupError::Conflicting {
            name: name.to_owned(),
            count,
        }),
        (None, _) => Err(match other_version {
            Some(version) => LookupError::UnsupportedVersion {
                name: name.to_owned(),
                version,
            },
            None => LookupError::NoRecord {
                name: name.to_owned(),
                query: query_name(name),
            },
        }),
    }
}

enum Record {
    Chorus(ChorusTxt),
    OtherVersion(String),
}

enum RecordError {
    Malformed(String),
    Missing(&'static str),
}

fn parse_record(strings: &[Vec<u8>]) -> Result<Record, RecordError> {
    let bytes = strings.concat();
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| RecordError::Malformed("it is not UTF-8 text".into()))?;
    let mut fields = text.split_ascii_whitespace();
    let version = match fields.next().map(|f| f.split_once('=')) {
        Some(Some(("v", version))) => version,
        _ => {
            return Err(RecordError::Malformed(format!(
                "it does not start with v={RECORD_VERSION}: {:?}",
                shorten(text)
            )));
        }
    };
    if version != RECORD_VERSION {
        return Ok(Record::OtherVersion(shorten(version)));
    }
    let mut fingerprint = None;
    let mut code = None;
    for field in fields {
        let Some((key, value)) = field.split_once('=') else {
            return Err(RecordError::Malformed(format!(
                "{:?} is not a key=value field",
                shorten(field)
            )));
        };
        let slot = match key {
            "fp" => &mut fingerprint,
            "code" => &mut code,
            "v" => return Err(RecordError::Malformed("v= appears twice".into())),
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err(RecordError::Malformed(format!("{key}= appears twice")));
        }
    }
    let fingerprint = fingerprint.ok_or(RecordError::Missing("fp"))?;
    let code = code.ok_or(RecordError::Missing("code"))?;
    if fingerprint.len() != 64 || !fingerprint.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(RecordError::Malformed(format!(
            "fp={:?} is not 64 hex digits",
            shorten(fingerprint)
        )));
    }
    let fingerprint = fingerprint
        .parse::<Fingerprint>()
        .map_err(|e| RecordError::Malformed(format!("fp: {e}")))?;
    if code.is_empty() {
        return Err(RecordError::Malformed("code= is empty".into()));
    }
    Ok(Record::Chorus(ChorusTxt {
        fingerprint,
        code: code.to_owned(),
    }))
}

/// At most 40 characters of untrusted text, for error messages.
fn shorten(text: &str) -> String {
    const MAX: usize = 40;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// Decodes the record's invite code (checking the certificate's signature) and checks that
/// its identity key has the record's fingerprint.
pub fn verify_chorus_txt(name: &str, txt: &ChorusTxt) -> Result<InviteCode, LookupError> {
    let invite_error = |source| LookupError::InviteCode {
        name: name.to_owned(),
        source,
    };
    let code = InviteCode::decode(&txt.code).map_err(invite_error)?;
    let actual = code
        .signed_certificate()
        .map_err(invite_error)?
        .certificate()
        .fingerprint();
    if actual != txt.fingerprint {
        return Err(LookupError::FingerprintMismatch {
            name: name.to_owned(),
            published: txt.fingerprint.to_hex(),
            actual: actual.to_hex(),
        });
    }
    Ok(code)
}

/// The fully qualified name the record of `name` lives at.
fn query_name(name: &str) -> String {
    format!("{RECORD_PREFIX}.{}.", normalize(name))
}

fn build_resolver(name: &str, config: &DnsResolverConfig) -> Result<TokioResolver, LookupError> {
    let system_error = |source| LookupError::SystemConfig {
        name: name.to_owned(),
        source: Box::new(source),
    };
    let mut builder = match config {
        DnsResolverConfig::System => TokioResolver::builder_tokio().map_err(system_error)?,
        DnsResolverConfig::Nameserver(addr) => {
            let mut server = NameServerConfig::udp_and_tcp(addr.ip());
            for connection in &mut server.connections {
                connection.port = addr.port();
            }
            let mut builder = Resolver::builder_with_config(
                ResolverConfig::from_parts(None, Vec::new(), vec![server]),
                TokioRuntimeProvider::default(),
            );
            let options = builder.options_mut();
            options.timeout = NAMESERVER_TIMEOUT;
            options.attempts = NAMESERVER_ATTEMPTS;
            options.use_hosts_file = ResolveHosts::Never;
            builder
        }
    };
    // One lookup per resolver: nothing to cache.
    builder.options_mut().cache_size = 0;
    builder.build().map_err(system_error)
}

/// Looks up `name`'s Chorus record (TXT at `_chorus.<name>`) and returns the invite code in
/// it, checked: certificate signature and fingerprint (see the module documentation).
pub async fn resolve_dns_contact(
    name: &str,
    resolver: &DnsResolverConfig,
) -> Result<InviteCode, LookupError> {
    if let Some(reason) = name_problem(name) {
        return Err(LookupError::InvalidName {
            name: name.trim().to_owned(),
            reason,
        });
    }
    let name = normalize(name);
    let query = query_name(&name);
    let dns = build_resolver(&name, resolver)?;
    let lookup = match dns.txt_lookup(query.as_str()).await {
        Ok(lookup) => lookup,
        Err(e) if e.is_no_records_found() => return Err(LookupError::NoRecord { name, query }),
        Err(source) => {
            return Err(LookupError::Resolver {
                name,
                query,
                source: Box::new(source),
            });
        }
    };
    let records: Vec<Vec<Vec<u8>>> = lookup
        .answers()
        .iter()
        .filter_map(|record| match &record.data {
            RData::TXT(txt) => Some(txt.txt_data.iter().map(|s| s.to_vec()).collect()),
            _ => None,
        })
        .collect();
    let txt = parse_chorus_txt(&name, &records)?;
    verify_chorus_txt(&name, &txt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use identity_tofu::LocalIdentity;
    use rand::SeedableRng;

    fn code(seed: u64) -> InviteCode {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let me = LocalIdentity::create("alice", &mut rng, 1_700_000_000_000).unwrap();
        InviteCode {
            certificate: me.credential_identity().to_vec(),
            peer_id: gossip::net::Keypair::generate_ed25519()
                .public()
                .to_peer_id()
                .to_string(),
            addrs: vec!["/ip4/192.0.2.1/tcp/4001".into()],
        }
    }

    fn fp(code: &InviteCode) -> Fingerprint {
        code.signed_certificate()
            .unwrap()
            .certificate()
            .fingerprint()
    }

    fn record(text: &str) -> Vec<Vec<u8>> {
        vec![text.as_bytes().to_vec()]
    }

    #[test]
    fn dns_record_strings_are_short_and_parse_back() {
        let c = code(1);
        let strings = chorus_txt_strings(&c).unwrap();
        assert!(
            strings.len() > 1,
            "an invite code does not fit in one string"
        );
        assert!(strings.iter().all(|s| s.len() <= MAX_TXT_STRING_LEN));
        let txt = parse_chorus_txt("alice.test", &[strings]).unwrap();
        assert_eq!(txt.fingerprint, fp(&c));
        assert_eq!(txt.code, c.encode());
        assert_eq!(verify_chorus_txt("alice.test", &txt).unwrap(), c);
    }

    #[test]
    fn dns_record_split_anywhere_is_the_same_record() {
        let c = code(2);
        let text = format!("v=chorus1 fp={} code={}", fp(&c).to_hex(), c.encode());
        let bytes = text.as_bytes();
        for split in [1, 9, 10, 13, 50, 77, 200, bytes.len() - 1] {
            let (a, b) = bytes.split_at(split);
            let txt = parse_chorus_txt("alice.test", &[vec![a.to_vec(), b.to_vec()]]).unwrap();
            assert_eq!(txt.code, c.encode(), "split at {split}");
        }
        // Three pieces, one of them empty, and extra whitespace and unknown keys.
        let padded = format!(
            "v=chorus1  note=hi\tfp={}   code={} ",
            fp(&c).to_hex().to_uppercase(),
            c.encode()
        );
        let (a, b) = padded.as_bytes().split_at(30);
        let txt =
            parse_chorus_txt("alice.test", &[vec![a.to_vec(), Vec::new(), b.to_vec()]]).unwrap();
        assert_eq!(txt.fingerprint, fp(&c));
    }

    #[test]
    fn dns_record_duplicates_are_one_record_but_conflicts_are_refused() {
        let (a, b) = (code(3), code(4));
        let ra = chorus_txt_strings(&a).unwrap();
        let rb = chorus_txt_strings(&b).unwrap();
        assert!(parse_chorus_txt("alice.test", &[ra.clone(), ra.clone()]).is_ok());
        let err = parse_chorus_txt("alice.test", &[ra, rb]).unwrap_err();
        assert!(
            matches!(err, LookupError::Conflicting { count: 2, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("alice.test"), "{err}");
    }

    #[test]
    fn dns_record_errors_are_named() {
        let fp_hex = "ab".repeat(32);
        type Case = (&'static [&'static str], fn(&LookupError) -> bool);
        let cases: &[Case] = &[
            (&[], |e| matches!(e, LookupError::NoRecord { .. })),
            (&["hello world"], |e| {
                matches!(e, LookupError::Malformed { .. })
            }),
            (&[""], |e| matches!(e, LookupError::Malformed { .. })),
            (&["v=chorus1 code=chorus1xyz"], |e| {
                matches!(e, LookupError::MissingField { field: "fp", .. })
            }),
            (&["v=chorus1 fp=00"], |e| {
                matches!(e, LookupError::MissingField { field: "code", .. })
            }),
            (&["v=chorus1 fp=00 code=chorus1xyz"], |e| {
                matches!(e, LookupError::Malformed { .. })
            }),
            (&["v=chorus1 fp=zz code=x fp=aa"], |e| {
                matches!(e, LookupError::Malformed { .. })
            }),
            (&["v=chorus1 garbage"], |e| {
                matches!(e, LookupError::Malformed { .. })
            }),
            (&["v=chorus2 whatever"], |e| {
                matches!(e, LookupError::UnsupportedVersion { .. })
            }),
        ];
        for (records, expected) in cases {
            let records: Vec<_> = records.iter().map(|r| record(r)).collect();
            let err = parse_chorus_txt("bob.example.org", &records).unwrap_err();
            assert!(expected(&err), "{records:?}: {err:?}");
            assert!(err.to_string().contains("bob.example.org"), "{err}");
        }
        // Valid syntax, but the code is not an invite code.
        let txt = parse_chorus_txt(
            "bob.example.org",
            &[record(&format!("v=chorus1 fp={fp_hex} code=chorus1AAAA"))],
        )
        .unwrap();
        let err = verify_chorus_txt("bob.example.org", &txt).unwrap_err();
        assert!(matches!(err, LookupError::InviteCode { .. }), "{err}");
        // Not UTF-8.
        let err = parse_chorus_txt("bob.example.org", &[vec![vec![0xff, 0xfe]]]).unwrap_err();
        assert!(matches!(err, LookupError::Malformed { .. }), "{err}");
        // A future version next to ours is skipped.
        let c = code(5);
        let mut records = vec![record("v=chorus2 anything")];
        records.push(chorus_txt_strings(&c).unwrap());
        assert_eq!(
            parse_chorus_txt("bob.example.org", &records).unwrap().code,
            c.encode()
        );
    }

    #[test]
    fn dns_record_with_a_foreign_fingerprint_is_refused() {
        let (a, b) = (code(6), code(7));
        let txt = ChorusTxt {
            fingerprint: fp(&b),
            code: a.encode(),
        };
        let err = verify_chorus_txt("alice.test", &txt).unwrap_err();
        assert!(
            matches!(err, LookupError::FingerprintMismatch { .. }),
            "{err}"
        );
    }

    #[test]
    fn dns_names_are_told_apart_from_codes_and_handles() {
        for yes in [
            "alice.example.org",
            "Alice.Example.Org.",
            "a-b.c0.io",
            " x.y ",
        ] {
            assert!(looks_like_dns_name(yes), "{yes}");
        }
        let long_label = format!("{}.org", "a".repeat(64));
        let long_name = format!("{}org", "abcdefghi.".repeat(25));
        for no in [
            "alice",
            "",
            ".",
            "alice..org",
            ".alice.org",
            "-a.org",
            "a-.org",
            "al ice.org",
            "alice_x.org",
            "ålice.org",
            "192.168.1.1",
            "chorus1abc.def",
            long_label.as_str(),
            long_name.as_str(),
        ] {
            assert!(!looks_like_dns_name(no), "{no}");
        }
        assert!(!looks_like_dns_name(&code(8).encode()));
    }

    #[tokio::test]
    async fn dns_lookup_of_a_bad_name_fails_before_asking() {
        let unused: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let err = resolve_dns_contact("not a name", &DnsResolverConfig::Nameserver(unused))
            .await
            .unwrap_err();
        assert!(matches!(err, LookupError::InvalidName { .. }), "{err}");
    }
}
