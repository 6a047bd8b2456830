//! DHT records for handles: `put_record` and `get_record` start a Kademlia query and park the
//! caller's reply channel under its query id; the query's progress events answer it, once.
//!
//! - get: the first record found answers (the local store's, reported at once by libp2p,
//!   else the first peer's), and the query is stopped; a query that ends without one
//!   answers `None`, one that times out `DhtTimeout`. A record whose key is not the one
//!   asked for, or whose value is over the limit, is ignored (peers are not trusted).
//! - put: quorum one. Success once one peer stored it. When the routing table held no peer
//!   at all, libp2p reports a failed quorum with no request sent: that is a success too (the
//!   record is stored locally, and served from here). A failed quorum after requests were
//!   sent is an error, as is a timeout with no peer having stored it.
//! - serving: records peers ask us to store are kept when their key and value are within the
//!   limits (the store also caps how many it keeps); others are dropped. Provider records are
//!   not used by Chorus and are not kept.

use identity_tofu::kv::KvStore;
use libp2p::PeerId;
use libp2p::kad::store::RecordStore;
use libp2p::kad::{
    self, GetRecordError, GetRecordOk, PutRecordError, QueryId, QueryResult, QueryStats,
};
use tokio::sync::oneshot;
use tracing::{debug, trace};

use super::config::{MAX_RECORD_KEY_BYTES, MAX_RECORD_VALUE_BYTES};
use super::driver::Driver;
use super::error::NetError;

/// A DHT query a handle waits on.
#[derive(Debug)]
pub(super) enum DhtQuery {
    Put(oneshot::Sender<Result<(), NetError>>),
    Get {
        key: kad::RecordKey,
        reply: oneshot::Sender<Result<Option<Vec<u8>>, NetError>>,
    },
}

impl<S: KvStore + 'static> Driver<S> {
    /// Stores locally, then starts the query that stores on the closest peers. The handle
    /// checked the sizes already.
    pub(super) fn put_record(
        &mut self,
        key: Vec<u8>,
        value: Vec<u8>,
        reply: oneshot::Sender<Result<(), NetError>>,
    ) {
        let record = kad::Record::new(key, value);
        match self
            .swarm
            .behaviour_mut()
            .kad
            .put_record(record, kad::Quorum::One)
        {
            Ok(id) => {
                self.dht.insert(id, DhtQuery::Put(reply));
            }
            Err(e) => {
                let _ = reply.send(Err(NetError::Dht(format!("local record store: {e}"))));
            }
        }
    }

    /// Starts a lookup; libp2p reports a record in the local store as the first progress.
    pub(super) fn get_record(
        &mut self,
        key: Vec<u8>,
        reply: oneshot::Sender<Result<Option<Vec<u8>>, NetError>>,
    ) {
        let key = kad::RecordKey::new(&key);
        let id = self.swarm.behaviour_mut().kad.get_record(key.clone());
        self.dht.insert(id, DhtQuery::Get { key, reply });
    }

    /// The peers in the routing table.
    pub(super) fn dht_peers(&mut self) -> Vec<PeerId> {
        let mut peers = Vec::new();
        for bucket in self.swarm.behaviour_mut().kad.kbuckets() {
            peers.extend(bucket.iter().map(|entry| *entry.node.key.preimage()));
        }
        peers
    }

    pub(super) fn on_kad(&mut self, event: kad::Event) {
        match event {
            kad::Event::OutboundQueryProgressed {
                id, result, stats, ..
            } => match result {
                QueryResult::GetRecord(result) => self.on_get_record(id, result),
                QueryResult::PutRecord(result) => self.on_put_record(id, result, &stats),
                other => trace!(?id, result = ?other, "kademlia query"),
            },
            kad::Event::InboundRequest {
                request:
                    kad::InboundRequest::PutRecord {
                        source,
                        record: Some(record),
                        ..
                    },
            } => self.store_inbound_record(source, record),
            kad::Event::RoutingUpdated { peer, .. } => trace!(%peer, "kademlia: routing updated"),
            other => trace!(event = ?other, "kademlia"),
        }
    }

    /// Keeps a record a peer stored here, if it is within the limits.
    fn store_inbound_record(&mut self, source: PeerId, record: kad::Record) {
        let (key_len, value_len) = (record.key.as_ref().len(), record.value.len());
        if key_len > MAX_RECORD_KEY_BYTES || value_len > MAX_RECORD_VALUE_BYTES {
            debug!(peer = %source, key_len, value_len, "kademlia: oversized record dropped");
            return;
        }
        if let Err(e) = self.swarm.behaviour_mut().kad.store_mut().put(record) {
            debug!(peer = %source, error = %e, "kademlia: record not stored");
        }
    }

    fn on_get_record(&mut self, id: QueryId, result: Result<GetRecordOk, GetRecordError>) {
        let Some(DhtQuery::Get { key, .. }) = self.dht.get(&id) else {
            return; // Answered already, or not a handle's query.
        };
        let answer = match result {
            Ok(GetRecordOk::FoundRecord(found)) => {
                let record = found.record;
                if record.key != *key || record.value.len() > MAX_RECORD_VALUE_BYTES {
                    debug!(peer = ?found.peer, "kademlia: ignoring a record not as asked for");
                    return;
                }
                // The caller has its answer: stop asking further peers.
                if let Some(mut query) = self.swarm.behaviour_mut().kad.query_mut(&id) {
                    query.finish();
                }
                Ok(Some(record.value))
            }
            Ok(GetRecordOk::FinishedWithNoAdditionalRecord { .. })
            | Err(GetRecordError::NotFound { .. }) => Ok(None),
            Err(GetRecordError::Timeout { .. }) => Err(NetError::DhtTimeout),
        };
        if let Some(DhtQuery::Get { reply, .. }) = self.dht.remove(&id) {
            let _ = reply.send(answer);
        }
    }

    fn on_put_record(
        &mut self,
        id: QueryId,
        result: Result<kad::PutRecordOk, PutRecordError>,
        stats: &QueryStats,
    ) {
        let Some(DhtQuery::Put(reply)) = self.dht.remove(&id) else {
            return;
        };
        let answer = match result {
            Ok(_) => Ok(()),
            Err(PutRecordError::QuorumFailed { success, .. })
                if success.is_empty() && stats.num_requests() == 0 =>
            {
                debug!("kademlia: no peer to store the record on; stored locally only");
                Ok(())
            }
            Err(PutRecordError::QuorumFailed { .. }) => Err(NetError::Dht(
                "no peer accepted the record (it is stored locally)".to_owned(),
            )),
            Err(PutRecordError::Timeout { success, .. }) if !success.is_empty() => Ok(()),
            Err(PutRecordError::Timeout { .. }) => Err(NetError::DhtTimeout),
        };
        let _ = reply.send(answer);
    }
}
