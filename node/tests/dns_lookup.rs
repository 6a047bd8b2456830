//! `chorus contact add <dns-name>`: the lookup against a real DNS server on 127.0.0.1.
//!
//! The server is written here on a plain UDP socket: it reads the question of each query
//! (RFC 1035 wire format, only as much as needed) and answers TXT records from a small zone,
//! NXDOMAIN for names outside it. The resolver is hickory's, as `chorus` uses it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use identity_tofu::LocalIdentity;
use node::invite_code::InviteCode;
use node::lookup::{DnsResolverConfig, LookupError, chorus_txt_strings, resolve_dns_contact};
use tokio::net::UdpSocket;

const TYPE_TXT: u16 = 16;
const CLASS_IN: u16 = 1;
const RCODE_NXDOMAIN: u8 = 3;

/// Owner name (lowercase, fully qualified) → its TXT records, each a list of strings.
type Zone = HashMap<String, Vec<Vec<Vec<u8>>>>;

/// A DNS server for `zone` on 127.0.0.1; the counter counts the queries it answered.
async fn serve(zone: Zone) -> (SocketAddr, Arc<AtomicUsize>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let addr = socket.local_addr().expect("local addr");
    let answered = Arc::new(AtomicUsize::new(0));
    let counter = answered.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        loop {
            let Ok((len, from)) = socket.recv_from(&mut buf).await else {
                return;
            };
            if let Some(response) = respond(&buf[..len], &zone) {
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = socket.send_to(&response, from).await;
            }
        }
    });
    (addr, answered)
}

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
}

/// The question of a query: its name (lowercase, with the final dot), type, class, and where
/// the question section ends. `None` for anything but a plain one-question query.
fn question(msg: &[u8]) -> Option<(String, u16, u16, usize)> {
    let flags = be16(msg, 2)?;
    if flags & 0x8000 != 0 || be16(msg, 4)? != 1 {
        return None; // a response, or not exactly one question
    }
    let mut pos = 12;
    let mut name = String::new();
    loop {
        let len = usize::from(*msg.get(pos)?);
        pos += 1;
        if len == 0 {
            break;
        }
        if len > 63 {
            return None; // compression pointers do not occur in a query's question
        }
        let label = msg.get(pos..pos + len)?;
        name.push_str(&String::from_utf8_lossy(label).to_ascii_lowercase());
        name.push('.');
        pos += len;
    }
    if name.is_empty() {
        name.push('.');
    }
    Some((name, be16(msg, pos)?, be16(msg, pos + 2)?, pos + 4))
}

/// The response to `query`: the question echoed, then the zone's TXT records for it.
fn respond(query: &[u8], zone: &Zone) -> Option<Vec<u8>> {
    let (name, qtype, qclass, end) = question(query)?;
    let records = zone.get(&name);
    let answers: &[Vec<Vec<u8>>] = match records {
        Some(records) if qtype == TYPE_TXT && qclass == CLASS_IN => records,
        _ => &[],
    };
    let rcode = if records.is_none() { RCODE_NXDOMAIN } else { 0 };
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(&query[..2]); // id
    out.push(0x80 | 0x04 | (query[2] & 0x79)); // QR, AA, the query's opcode and RD
    out.push(0x80 | rcode); // RA, rcode
    out.extend_from_slice(&1u16.to_be_bytes()); // QDCOUNT
    out.extend_from_slice(&u16::try_from(answers.len()).ok()?.to_be_bytes()); // ANCOUNT
    out.extend_from_slice(&[0, 0, 0, 0]); // NSCOUNT, ARCOUNT
    out.extend_from_slice(&query[12..end]);
    for strings in answers {
        let rdata: Vec<u8> = strings
            .iter()
            .flat_map(|s| std::iter::once(s.len() as u8).chain(s.iter().copied()))
            .collect();
        out.extend_from_slice(&[0xc0, 0x0c]); // the name: a pointer to the question's
        out.extend_from_slice(&TYPE_TXT.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&60u32.to_be_bytes()); // TTL
        out.extend_from_slice(&u16::try_from(rdata.len()).ok()?.to_be_bytes());
        out.extend_from_slice(&rdata);
    }
    Some(out)
}

fn invite_code(handle: &str) -> InviteCode {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64;
    let me = LocalIdentity::create(handle, &mut rand::rngs::OsRng, now_ms).expect("identity");
    InviteCode {
        certificate: me.credential_identity().to_vec(),
        peer_id: gossip::net::Keypair::generate_ed25519()
            .public()
            .to_peer_id()
            .to_string(),
        addrs: vec![],
    }
}

fn fingerprint_hex(code: &InviteCode) -> String {
    code.signed_certificate()
        .expect("certificate")
        .certificate()
        .fingerprint()
        .to_hex()
}

/// A record's text split into TXT strings of at most 255 bytes.
fn strings(text: &str) -> Vec<Vec<u8>> {
    text.as_bytes().chunks(255).map(<[u8]>::to_vec).collect()
}

struct Fixture {
    server: DnsResolverConfig,
    answered: Arc<AtomicUsize>,
    alice: InviteCode,
    bob: InviteCode,
}

async fn fixture() -> Fixture {
    let alice = invite_code("alice");
    let bob = invite_code("bob");
    let alice_record = chorus_txt_strings(&alice).expect("record");
    assert!(alice_record.len() > 1, "the code is split across strings");
    // Alice's code under Bob's fingerprint: someone swapped the code, or the fingerprint.
    let swapped = strings(&format!(
        "v=chorus1 fp={} code={}",
        fingerprint_hex(&bob),
        alice.encode()
    ));
    let zone: Zone = [
        ("_chorus.alice.test.", vec![alice_record.clone()]),
        ("_chorus.mallory.test.", vec![swapped]),
        ("_chorus.garbage.test.", vec![strings("hello world")]),
        (
            "_chorus.twice.test.",
            vec![alice_record, chorus_txt_strings(&bob).expect("record")],
        ),
        ("_chorus.empty.test.", vec![]),
    ]
    .into_iter()
    .map(|(name, records)| (name.to_owned(), records))
    .collect();
    let (addr, answered) = serve(zone).await;
    Fixture {
        server: DnsResolverConfig::Nameserver(addr),
        answered,
        alice,
        bob,
    }
}

#[tokio::test]
async fn dns_lookup_returns_the_published_invite_code() {
    let f = fixture().await;
    let code = resolve_dns_contact("alice.test", &f.server)
        .await
        .expect("alice's record");
    assert_eq!(code, f.alice);
    assert_ne!(code, f.bob);
    // Case and a final dot do not matter.
    let again = resolve_dns_contact("Alice.TEST.", &f.server)
        .await
        .expect("alice's record");
    assert_eq!(again, f.alice);
    assert!(
        f.answered.load(Ordering::SeqCst) >= 2,
        "the server was asked"
    );
}

#[tokio::test]
async fn dns_lookup_refuses_a_record_whose_fingerprint_does_not_match() {
    let f = fixture().await;
    let err = resolve_dns_contact("mallory.test", &f.server)
        .await
        .expect_err("the fingerprint is Bob's, the code Alice's");
    match &err {
        LookupError::FingerprintMismatch {
            name,
            published,
            actual,
        } => {
            assert_eq!(name, "mallory.test");
            assert_eq!(published, &fingerprint_hex(&f.bob));
            assert_eq!(actual, &fingerprint_hex(&f.alice));
        }
        other => panic!("expected a fingerprint mismatch, got {other:?}"),
    }
    assert!(err.to_string().contains("mallory.test"), "{err}");
}

#[tokio::test]
async fn dns_lookup_of_a_name_without_a_record_says_so() {
    let f = fixture().await;
    for name in ["nobody.test", "empty.test"] {
        let err = resolve_dns_contact(name, &f.server)
            .await
            .expect_err("no record");
        assert!(
            matches!(&err, LookupError::NoRecord { name: n, query }
                if n == name && query == &format!("_chorus.{name}.")),
            "{name}: {err:?}"
        );
        assert!(err.to_string().contains(name), "{err}");
    }
    assert!(
        f.answered.load(Ordering::SeqCst) >= 2,
        "the server was asked"
    );
}

#[tokio::test]
async fn dns_lookup_of_a_garbage_record_is_malformed() {
    let f = fixture().await;
    let err = resolve_dns_contact("garbage.test", &f.server)
        .await
        .expect_err("garbage");
    assert!(
        matches!(&err, LookupError::Malformed { name, .. } if name == "garbage.test"),
        "{err:?}"
    );
    assert!(err.to_string().contains("garbage.test"), "{err}");
}

#[tokio::test]
async fn dns_lookup_refuses_conflicting_records() {
    let f = fixture().await;
    let err = resolve_dns_contact("twice.test", &f.server)
        .await
        .expect_err("two different records");
    assert!(
        matches!(&err, LookupError::Conflicting { name, count: 2 } if name == "twice.test"),
        "{err:?}"
    );
}

/// The whole path through a running node: `contact add ben.test` at ann's node (whose config
/// file names the test DNS server) finds ben's record, pins him, and ann can invite him.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_contact_add_through_a_running_node() -> anyhow::Result<()> {
    use node::demo::harness::{LocalNode, NodeOptions, wait_for};
    let dir = tempfile::tempdir()?;
    let options = NodeOptions::default();
    let mut ann = LocalNode::init(dir.path(), "ann")?;
    let mut ben = LocalNode::init(dir.path(), "ben")?;
    ben.start(&options, 0, &[]).await?;
    let boot = ben.listen.clone().expect("ben listens");
    let ben_code = InviteCode::decode(&ben.invite_code().await?)?;
    let zone: Zone = [(
        "_chorus.ben.test.".to_owned(),
        vec![chorus_txt_strings(&ben_code)?],
    )]
    .into_iter()
    .collect();
    let (dns, answered) = serve(zone).await;
    std::fs::write(ann.data.config(), format!("dns_server = \"{dns}\"\n"))?;
    ann.start(&options, 0, std::slice::from_ref(&boot)).await?;

    let contact = ann.add_contact("ben.test").await?;
    assert_eq!(contact.handle, "ben");
    assert_eq!(contact.fingerprint, fingerprint_hex(&ben_code));
    assert!(
        answered.load(Ordering::SeqCst) >= 1,
        "the node asked the DNS server"
    );
    let refused = ann.add_contact("nobody.test").await.unwrap_err();
    assert!(
        format!("{refused:#}").contains("nobody.test"),
        "{refused:#}"
    );

    let gid = ann.create_group("team").await?.group_id;
    ann.invite("team", "ben").await?;
    wait_for(
        "ben to join",
        std::time::Duration::from_secs(60),
        || async { Ok(ben.status(&gid).await?.map(|_| ())) },
    )
    .await?;
    ann.stop().await?;
    ben.stop().await?;
    Ok(())
}
