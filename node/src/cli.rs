//! The command line. The shape of the commands is fixed (scripts depend on it).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "chorus",
    version,
    about = "Chorus: a peer-to-peer, end-to-end encrypted group messenger node (MLS over gossip)",
    long_about = "Chorus: a peer-to-peer, end-to-end encrypted group messenger node.\n\n\
        Start with `chorus init --handle NAME`, then `chorus run` (the daemon). Every other \
        command talks to the running daemon over its local API. `chorus demo` runs three \
        nodes on this machine and shows a whole conversation with a fork and a partition."
)]
pub struct Cli {
    /// The node's data directory [default: $CHORUS_DATA, else $XDG_DATA_HOME/chorus, else
    /// ~/.local/share/chorus]
    #[arg(long, global = true, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Log as JSON lines (logs go to stderr; filter with RUST_LOG)
    #[arg(long, global = true)]
    pub json_logs: bool,
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size of the `run` variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create this node's identity (identity key, device key and certificate, peer key)
    Init {
        /// The name others see (letters, digits, '-', '_', '.')
        #[arg(long)]
        handle: Option<String>,
        /// Protect the master key (which seals everything the node stores) with a passphrase,
        /// asked on the terminal (or read from $CHORUS_PASSPHRASE); `run` asks for it again.
        /// Without this, the key is kept in a 0600 key file, for nodes that start unattended
        #[arg(long)]
        passphrase: bool,
        /// Read the passphrase from this file (implies --passphrase)
        #[arg(long, value_name = "FILE", conflicts_with = "key_file")]
        passphrase_file: Option<PathBuf>,
        /// Keep the master key in this new 0600 file instead of <data>/master.key: kept off
        /// the data directory's disk, a copy of the data directory opens nothing
        #[arg(long, value_name = "FILE", conflicts_with = "passphrase")]
        key_file: Option<PathBuf>,
    },
    /// Run the node (the daemon): network, groups and the local API
    Run(RunArgs),
    /// Show this node's identity: handle, fingerprint and invite code
    Id {
        #[arg(long)]
        json: bool,
        /// Also print the fingerprint as a QR code
        #[arg(long)]
        qr: bool,
    },
    /// Contacts: people you can invite, pinned trust-on-first-use
    #[command(subcommand)]
    Contact(ContactCommand),
    /// Groups: create, invite, remove, update, leave, status
    #[command(subcommand)]
    Group(GroupCommand),
    /// Send a message to a group
    Send { group: String, text: String },
    /// Show a group's messages
    Messages {
        group: String,
        #[arg(long)]
        json: bool,
        /// Keep printing new messages as they arrive
        #[arg(long)]
        follow: bool,
    },
    /// The node's peers and groups
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Interactive chat in a group: full screen in a terminal, line by line when piped or with
    /// --plain (/who, /status, /quit)
    #[command(long_about = "Interactive chat in a group.\n\n\
        In a terminal, full screen: a title bar with the group's epoch and fork state \
        (settled, resolving or split), the conversation with membership, fork, branch-switch, \
        split, key-change and removal notices inline (PageUp/PageDown or the mouse wheel to \
        scroll; hold Shift to select text with the mouse), who is online or away, and an input \
        line (Left/Right, Home/End, Backspace/Delete, Up/Down for sent lines). Enter sends; \
        /who and /status show the group's state; /quit, Ctrl-C or Ctrl-D (on an empty line) \
        leave.\n\n\
        Line mode when stdin or stdout is not a terminal, or with --plain: prints the recent \
        messages as `[HH:MM:SS] sender: text`, then each new message and notice as a line; \
        each line read from stdin is sent (the same commands work), and the chat ends at the \
        end of stdin. Scripts can pipe lines into `chorus chat <group>`.")]
    Chat {
        /// The group's name or id
        group: String,
        /// Line mode even in a terminal
        #[arg(long)]
        plain: bool,
    },
    /// Start N real nodes on this machine and run a scripted conversation with a commit race
    /// and a partition that heals; exits non-zero unless all converge with every message
    Demo {
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        #[arg(long)]
        json: bool,
        /// Keep the nodes' data directories (printed at the end)
        #[arg(long)]
        keep: bool,
    },
    /// Measure message latency and throughput of N local nodes against bare libp2p gossipsub
    /// (same swarm settings and payload), side by side in one run, and print the ratios
    Bench {
        /// Nodes in each network
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// Messages per measurement
        #[arg(long, default_value_t = 200)]
        messages: usize,
        /// Message size in bytes
        #[arg(long, default_value_t = 256)]
        payload: usize,
        /// The Chorus nodes' database durability: synced or process-crash
        #[arg(long, default_value = "synced")]
        durability: String,
        /// Sends kept outstanding at once in the throughput phase (the baseline publishes
        /// without waiting at all); the latency phase always sends one at a time
        #[arg(long, default_value_t = 32)]
        in_flight: usize,
        /// Messages of the latency phase, if not --messages (one at a time, ~2 ms each: a
        /// long throughput run to profile need not wait for as many)
        #[arg(long)]
        latency_messages: Option<usize>,
    },
    /// Measure honest nodes' delivery rate with and without an attacker node that floods their
    /// group's topic with forged envelopes, replays and garbage (loopback only), side by side
    /// in one run; print the ratio, the attacker's score at each honest node and what they shed
    #[command(
        after_help = "The honest nodes are real `chorus run` processes in one group; the attacker is a bare gossip node connected to each of them. Goals printed at the end: the attacked delivery rate stays within 10% of the clean one, and every honest node graylists the attacker.\n\nExample: cargo run --release --bin chorus -- attack-bench --messages 1000"
    )]
    AttackBench {
        /// Honest nodes
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// Messages per round (one clean round, one attacked)
        #[arg(long, default_value_t = 500)]
        messages: usize,
        /// Message size in bytes
        #[arg(long, default_value_t = 256)]
        payload: usize,
        /// Sends kept outstanding at once
        #[arg(long, default_value_t = 32)]
        in_flight: usize,
        /// The attacker's messages per second
        #[arg(long, default_value_t = 2000)]
        flood_rate: u32,
        /// Seed of the attacker's choices [default: random]
        #[arg(long)]
        seed: Option<u64>,
    },
    /// The attack bench's attacker, as its own process (hidden: `attack-bench` starts it).
    /// Prints its peer id as a JSON line, floods until its stdin closes, then prints what it
    /// sent as a JSON line
    #[command(hide = true)]
    Attacker {
        /// Honest peers to connect to (multiaddrs ending in /p2p/<id>)
        #[arg(long, required = true)]
        peer: Vec<String>,
        /// The group reference (32 hex digits) whose topic to flood
        #[arg(long)]
        group: String,
        /// Messages per second
        #[arg(long, default_value_t = 2000)]
        rate: u32,
        /// `mixed` (forged, replayed, garbage) or `forged`
        #[arg(long, default_value = "mixed")]
        mix: String,
        /// Seed of its choices
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Run real nodes on loopback under sustained traffic, commits, crashes (SIGKILL) and
    /// partitions for a bounded time, then check that every acknowledged message reached every
    /// member exactly once and print each node's memory (peak, and growth after warm-up)
    #[command(
        after_help = "The first half of the nodes (the bootstrap node among them) is never \
                      restarted, so its memory is followed over the whole run; crashes and \
                      partitions hit the other half. A partition restarts a few nodes as an \
                      island on new ports and later brings them back; partitions last at most \
                      a third of the fork window. Exits non-zero if a message was lost or \
                      shown twice, or a group did not converge. The memory table gives each \
                      node's resident set, the allocator's bytes in use (RSS growing while \
                      they stay flat is fragmentation) and the database's part of them \
                      (memtables and block cache, bounded by db_memory_mib).\n\n\
                      Example: chorus soak --duration 10m --nodes 10 --groups 3 --json soak.json"
    )]
    Soak {
        /// Nodes (at least 4)
        #[arg(long, default_value_t = 10)]
        nodes: usize,
        /// Groups
        #[arg(long, default_value_t = 3)]
        groups: usize,
        /// Members per group (consecutive nodes, spread over the nodes)
        #[arg(long, default_value_t = 5)]
        group_size: usize,
        /// How long traffic and faults go on (e.g. 90s, 10m, 1h)
        #[arg(long, default_value = "10m", value_parser = crate::bench::soak::parse_duration)]
        duration: std::time::Duration,
        /// Messages each member sends to each of its groups per minute, on average
        #[arg(long, default_value_t = 6.0)]
        messages_per_minute: f64,
        /// A random member commits an update to a random group this often
        #[arg(long, default_value = "30s", value_parser = crate::bench::soak::parse_duration)]
        commit_every: std::time::Duration,
        /// A volatile node is killed (SIGKILL) and restarted 3–15 s later this often
        #[arg(long, default_value = "60s", value_parser = crate::bench::soak::parse_duration)]
        crash_every: std::time::Duration,
        /// A partition starts this often (if none is running)
        #[arg(long, default_value = "120s", value_parser = crate::bench::soak::parse_duration)]
        partition_every: std::time::Duration,
        /// The nodes' fork window
        #[arg(long, default_value = "120s", value_parser = crate::bench::soak::parse_duration)]
        fork_window: std::time::Duration,
        /// The nodes' database memory budget (`db_memory_mib`, written to each node's
        /// config.toml) [default: the node's default, 16]. A small one fills within the run, so
        /// the whole RSS must level off
        #[arg(long, value_name = "MIB")]
        db_memory_mib: Option<u64>,
        /// Seed for the choices of groups, senders, victims and islands [default: random]
        #[arg(long)]
        seed: Option<u64>,
        /// Keep the nodes' data directories and logs (the path is printed)
        #[arg(long)]
        keep: bool,
        /// Also write the report as JSON to this file
        #[arg(long, value_name = "FILE")]
        json: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Args, Default)]
pub struct RunArgs {
    /// Listen address (repeatable) [default: /ip4/0.0.0.0/tcp/0 and /ip4/0.0.0.0/udp/0/quic-v1]
    #[arg(long, value_name = "MULTIADDR")]
    pub listen: Vec<String>,
    /// Peer to dial at start (repeatable), e.g. /dns4/boot.example.org/tcp/4001/p2p/12D3…
    #[arg(long, value_name = "MULTIADDR")]
    pub bootstrap: Vec<String>,
    /// Relay to listen through when not reachable directly (repeatable)
    #[arg(long, value_name = "MULTIADDR")]
    pub relay: Vec<String>,
    /// An address others reach this node at (public IP, port mapping) (repeatable)
    #[arg(long, value_name = "MULTIADDR")]
    pub external: Vec<String>,
    /// The local API address (loopback only) [default: 127.0.0.1:7420]
    #[arg(long, value_name = "HOST:PORT")]
    pub api: Option<SocketAddr>,
    /// Do not look for peers on the LAN with mDNS
    #[arg(long)]
    pub no_mdns: bool,
    /// Serve as a circuit relay for nodes behind NAT (for public nodes; implies --dht-server)
    #[arg(long)]
    pub relay_server: bool,
    /// Serve the DHT (handle records, KeyPackage bundles) from the start; otherwise a node
    /// does once its address is confirmed public. Use it on LAN-only networks
    #[arg(long)]
    pub dht_server: bool,
    /// Serve Prometheus metrics at http://HOST:PORT/metrics
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics: Option<SocketAddr>,
    /// Configuration file [default: <data>/config.toml, else ~/.config/chorus/config.toml]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The fork window in milliseconds (how long forked states are kept)
    #[arg(long, value_name = "MS")]
    pub fork_window_ms: Option<u64>,
    /// Tie-break policy: lowest-ref, removes-first or deepest-branch
    #[arg(long)]
    pub policy: Option<String>,
    /// Anti-entropy sync interval in milliseconds
    #[arg(long, value_name = "MS")]
    pub anti_entropy_ms: Option<u64>,
    /// Beacon interval in milliseconds
    #[arg(long, value_name = "MS")]
    pub beacon_interval_ms: Option<u64>,
    /// synced (fsync every step; survives power loss) or process-crash (survives a crash of
    /// the node only; faster on slow disks) [default: synced]
    #[arg(long)]
    pub durability: Option<String>,
    /// DNS server for `contact add <dns-name>` lookups [default: the system's resolver]
    #[arg(long, value_name = "IP:PORT")]
    pub dns_server: Option<SocketAddr>,
    /// The master key file, if not the one <data>/master.key names
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Read the passphrase of a passphrase-protected data directory from this file [default:
    /// $CHORUS_PASSPHRASE, else ask on the terminal]
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ContactCommand {
    /// Add a contact from their invite code (what `chorus id` prints on their node) or their
    /// DNS name (a `_chorus.<name>` TXT record holding `v=chorus1 fp=<fingerprint> code=<invite
    /// code>`)
    Add {
        /// An invite code (chorus1…) or a DNS name (alice.example.org)
        address: String,
        /// The name to call them by [default: their handle]
        #[arg(long)]
        name: Option<String>,
    },
    /// List contacts with their fingerprints and whether they are verified
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show the safety number to compare with a contact; give it to mark them verified
    Verify {
        contact: String,
        safety_number: Option<String>,
    },
    /// Accept a contact's new identity key after checking it out of band
    AcceptKey { contact: String },
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Create a group with you in it
    Create {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// List your groups
    List {
        #[arg(long)]
        json: bool,
    },
    /// Add a contact to a group (their node must be online to hand out a KeyPackage)
    Invite { group: String, contact: String },
    /// Remove a member (by handle, contact name or fingerprint)
    Remove { group: String, member: String },
    /// Refresh your key material in the group (post-compromise security)
    Update { group: String },
    /// Leave a group (another member commits your removal)
    Leave { group: String },
    /// A group's epoch, branch, members and fork state
    Status {
        group: String,
        #[arg(long)]
        json: bool,
    },
}
