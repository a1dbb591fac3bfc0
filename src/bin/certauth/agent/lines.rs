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
#[derive(Debug, PartialEq, Eq)]
pub struct TooLong;

pub struct ClientLines {
    reader: OwnedReadHalf,
    /// Bytes read and not yet returned, with capacity for a whole line and one more chunk.
    pending: Zeroizing<Vec<u8>>,
    limit: usize,
}

impl ClientLines {
    /// Lines of at most `limit` bytes from `reader`, not counting the newline.
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
            // Only the first `limit + 1` bytes can hold the newline of a line within the limit.
            // (Looking further, a chunk read past the limit would let a longer line through.)
            let window = &self.pending[..self.pending.len().min(self.limit + 1)];
            if let Some(end) = window.iter().position(|b| *b == b'\n') {
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// What `ClientLines` with `limit` makes of `sent`, the writer then closed.
    async fn lines_of(sent: &[u8], limit: usize) -> Vec<Result<Vec<u8>, TooLong>> {
        let (client, server) = tokio::net::UnixStream::pair().unwrap();
        let (reader, _writer) = server.into_split();
        let sent = sent.to_vec();
        let writing = tokio::spawn(async move {
            let mut client = client;
            // The reader stops at a line too long, so the rest may find no one to read it.
            let _ = client.write_all(&sent).await;
        });
        let mut lines = ClientLines::new(reader, limit);
        let mut got = Vec::new();
        while let Some(line) = lines.next().await.unwrap() {
            let stop = line.is_err();
            got.push(line.map(|l| l.to_vec()));
            if stop {
                break;
            }
        }
        writing.await.unwrap();
        got
    }

    fn line(len: usize) -> Vec<u8> {
        let mut line = vec![b'x'; len];
        line.push(b'\n');
        line
    }

    #[tokio::test]
    async fn a_line_of_exactly_the_limit_passes_and_one_byte_more_is_refused() {
        let limit = 64 * 1024;
        assert_eq!(lines_of(&line(limit), limit).await, vec![Ok(line(limit))]);
        assert_eq!(lines_of(&line(limit + 1), limit).await, vec![Err(TooLong)]);
        // A line that ends inside the chunk read past the limit is still too long.
        assert_eq!(
            lines_of(&line(limit + 100), limit).await,
            vec![Err(TooLong)]
        );
        assert_eq!(
            lines_of(&line(limit + CHUNK - 1), limit).await,
            vec![Err(TooLong)]
        );
    }

    #[tokio::test]
    async fn short_lines_after_one_another_each_pass() {
        let limit = 8;
        let mut sent = line(8);
        sent.extend(line(0));
        sent.extend(line(3));
        sent.extend(line(9));
        assert_eq!(
            lines_of(&sent, limit).await,
            vec![Ok(line(8)), Ok(line(0)), Ok(line(3)), Err(TooLong)]
        );
    }
}
