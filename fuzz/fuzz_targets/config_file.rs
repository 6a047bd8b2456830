//! The node's config file parser (node/src/config.rs): TOML a user writes, with every value
//! checked.
//!
//! Checks: no panic; a file that parses passes the checks again and names a valid durability.

#![no_main]

use chorus_fuzz::config::Config;
use chorus_fuzz::seeds;
use libfuzzer_sys::fuzz_target;

/// Real config files: the empty one, every key set, and a few typical ones.
const FILES: &[&str] = &[
    "",
    "mdns = false\nfork_window_ms = 5000\n",
    r#"listen = ["/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"]
bootstrap = ["/ip4/192.0.2.1/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"]
relays = ["/dns4/relay.example/tcp/4001"]
external = ["/ip4/203.0.113.5/tcp/4001"]
api = "127.0.0.1:7420"
mdns = true
relay_server = false
dht_server = true
metrics = "127.0.0.1:9464"
json_logs = true
fork_window_ms = 60000
policy = "removes-first"
beacon_interval_ms = 30000
anti_entropy_ms = 30000
heartbeat_ms = 1000
durability = "process-crash"
dns_server = "127.0.0.1:53"
"#,
    "api = \"[::1]:7000\"\npolicy = \"deepest-branch\"\ndurability = \"synced\"\n",
    "# comment\n[section]\nkey = 1\n",
];

fuzz_target!(
    init: {
        seeds::write(FILES);
    },
    |data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        if let Ok(config) = Config::parse(text) {
            config.check().expect("a parsed config passes its checks");
            config.durability().expect("a parsed config names a durability");
        }
    }
);
