//! How sync messages travel on a libp2p stream: a 4-byte big-endian length, then the bincode
//! body. The length is checked against the limit before anything is allocated or read, so a
//! peer cannot make us buffer more than one maximal message per stream.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use libp2p::request_response::Codec;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::wire::{SyncRequest, SyncResponse};
use crate::codec;

/// The request-response codec of `/chorus/sync/1`.
#[derive(Debug, Clone)]
pub struct SyncCodec {
    max_message_bytes: usize,
}

impl SyncCodec {
    /// A codec that refuses messages longer than `max_message_bytes`.
    pub fn new(max_message_bytes: usize) -> Self {
        Self { max_message_bytes }
    }

    async fn read<T, M>(&self, io: &mut T) -> io::Result<M>
    where
        T: AsyncRead + Unpin + Send,
        M: DeserializeOwned,
    {
        let mut prefix = [0u8; 4];
        io.read_exact(&mut prefix).await?;
        let len = u32::from_be_bytes(prefix) as usize;
        if len > self.max_message_bytes {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "sync message of {len} bytes exceeds the limit of {}",
                    self.max_message_bytes
                ),
            ));
        }
        let mut body = vec![0u8; len];
        io.read_exact(&mut body).await?;
        codec::decode(&body, self.max_message_bytes)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    async fn write<T, M>(&self, io: &mut T, message: &M) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
        M: Serialize,
    {
        let body = codec::encode(message).map_err(io::Error::other)?;
        if body.len() > self.max_message_bytes {
            // Our own sizing is wrong: fail the exchange rather than send what the peer
            // would refuse anyway.
            return Err(io::Error::other(format!(
                "sync message of {} bytes exceeds the limit of {}",
                body.len(),
                self.max_message_bytes
            )));
        }
        let len = u32::try_from(body.len()).map_err(io::Error::other)?;
        io.write_all(&len.to_be_bytes()).await?;
        io.write_all(&body).await?;
        io.flush().await
    }
}

impl Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = SyncRequest;
    type Response = SyncResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<SyncRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        self.read(io).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<SyncResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        self.read(io).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: SyncRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        self.write(io, &request).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: SyncResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        self.write(io, &response).await
    }
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;
    use futures::io::Cursor;

    use super::*;
    use crate::envelope_id::EnvelopeId;

    #[test]
    fn round_trip_through_a_buffer() {
        let mut codec = SyncCodec::new(1024);
        let protocol = StreamProtocol::new(super::super::wire::SYNC_PROTOCOL);
        let request = SyncRequest::Fetch {
            topic: "t".into(),
            ids: vec![EnvelopeId([3; 32])],
        };
        let mut buffer = Cursor::new(Vec::new());
        block_on(codec.write_request(&protocol, &mut buffer, request.clone())).unwrap();
        buffer.set_position(0);
        let read = block_on(codec.read_request(&protocol, &mut buffer)).unwrap();
        assert_eq!(read, request);
    }

    #[test]
    fn oversized_length_prefix_is_refused_before_reading() {
        let mut codec = SyncCodec::new(1024);
        let protocol = StreamProtocol::new(super::super::wire::SYNC_PROTOCOL);
        let mut input = Cursor::new(u32::MAX.to_be_bytes().to_vec());
        let error = block_on(codec.read_request(&protocol, &mut input)).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn garbage_body_is_an_error() {
        let mut codec = SyncCodec::new(1024);
        let protocol = StreamProtocol::new(super::super::wire::SYNC_PROTOCOL);
        let mut bytes = 3u32.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0xff, 0xff, 0xff]);
        let mut input = Cursor::new(bytes);
        assert!(block_on(codec.read_response(&protocol, &mut input)).is_err());
    }
}
