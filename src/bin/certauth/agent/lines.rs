//! Request lines from a client, framed in one buffer that is wiped as it is consumed and when
//! dropped (a line may carry a PIN), reserved up front so it is never reallocated and copied.

use tokio::io::AsyncReadExt;
use tokio::net::unix::OwnedReadHalf;
use zeroize::Zeroizing;

/// A line from the client, newline included; wiped when dropped.
pub type Line = Zeroizing<Vec<u8>>;

/// How much is read from the socket at a time.
const CHUNK: usize = 4096;

/// A line longer than the limit.
#[derive(Debug)]
pub struct TooLong;

pub struct ClientLines {
    reader: OwnedReadHalf,
    /// Bytes read and not yet returned, with capacity for a whole line and one more chunk.
    pending: Zeroizing<Vec<u8>>,
    limit: usize,
}

impl ClientLines {
    /// Lines of at most `limit` bytes from `reader`.
    pub fn new(reader: OwnedReadHalf, limit: usize) -> Self {
        Self {
            reader,
            pending: Zeroizing::new(Vec::with_capacity(limit + CHUNK)),
            limit,
        }
    }

    /// The next line; `None` at the end of the stream (a last line without its newline is
    /// dropped, wiped). Cancel-safe: nothing read is lost if the future is dropped.
    pub async fn next(&mut self) -> std::io::Result<Option<Result<Line, TooLong>>> {
        loop {
            if let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
                return Ok(Some(Ok(self.take(end + 1))));
            }
            if self.pending.len() > self.limit {
                return Ok(Some(Err(TooLong)));
            }
            let mut chunk = Zeroizing::new([0u8; CHUNK]);
            let read = self.reader.read(&mut chunk[..]).await?;
            if read == 0 {
                return Ok(None);
            }
            self.pending.extend_from_slice(&chunk[..read]);
        }
    }

    /// Waits until the client sends anything or hangs up.
    pub async fn closed(&mut self) {
        let mut ignored = [0u8; 1];
        let _ = self.reader.read(&mut ignored).await;
    }

    /// The first `len` pending bytes; the rest moves to the front and the vacated tail is wiped.
    fn take(&mut self, len: usize) -> Line {
        let line = Zeroizing::new(self.pending[..len].to_vec());
        let total = self.pending.len();
        self.pending.copy_within(len..total, 0);
        self.pending[total - len..].fill(0);
        self.pending.truncate(total - len);
        line
    }
}
