//! Request lines from a client, framed in one buffer that is wiped as it is consumed and when
//! dropped (a line may carry a PIN). The buffer grows only as far as the bytes waiting need, by
//! hand so that each allocation it outgrows is wiped too, and is let go whenever it empties: an
//! idle connection holds none.

use tokio::io::AsyncReadExt;
use tokio::net::unix::OwnedReadHalf;
use zeroize::Zeroizing;

/// A line from the client, newline included; wiped when dropped.
pub type Line = Zeroizing<Vec<u8>>;

/// The first allocation for a client's bytes; each growth doubles it, up to the line limit.
const FIRST_CAPACITY: usize = 1024;

/// A line longer than the limit.
#[derive(Debug, PartialEq, Eq)]
pub struct TooLong;

pub struct ClientLines {
    reader: OwnedReadHalf,
    /// Bytes read and not yet returned: at most `limit + 1`, enough to tell a line too long.
    pending: Zeroizing<Vec<u8>>,
    limit: usize,
}

impl ClientLines {
    /// Lines of at most `limit` bytes from `reader`, not counting the newline.
    pub fn new(reader: OwnedReadHalf, limit: usize) -> Self {
        Self {
            reader,
            pending: Zeroizing::new(Vec::new()),
            limit,
        }
    }

    /// The next line; `None` at the end of the stream (a last line without its newline is
    /// dropped, wiped). Cancel-safe: nothing read is lost if the future is dropped.
    pub async fn next(&mut self) -> std::io::Result<Option<Result<Line, TooLong>>> {
        loop {
            // Only the first `limit + 1` bytes can hold the newline of a line within the limit.
            // (Looking further, bytes read past the limit would let a longer line through.)
            let window = &self.pending[..self.pending.len().min(self.limit + 1)];
            if let Some(end) = window.iter().position(|b| *b == b'\n') {
                return Ok(Some(Ok(self.take(end + 1))));
            }
            if self.pending.len() > self.limit {
                return Ok(Some(Err(TooLong)));
            }
            self.make_room();
            // Straight into the spare capacity, which is never empty here, so the vector never
            // grows (and frees its old allocation unwiped) by itself.
            let read = self.reader.read_buf(&mut *self.pending).await?;
            if read == 0 {
                return Ok(None);
            }
        }
    }

    /// Waits until the client sends anything or hangs up.
    pub async fn closed(&mut self) {
        let mut ignored = [0u8; 1];
        let _ = self.reader.read(&mut ignored).await;
    }

    /// Room for at least one more byte, the buffer never holding more than `limit + 1`. A full
    /// buffer is copied into one twice its size (at least [`FIRST_CAPACITY`]) and the old one
    /// wiped as it drops.
    fn make_room(&mut self) {
        let (len, capacity) = (self.pending.len(), self.pending.capacity());
        if len < capacity {
            return;
        }
        let grown = (capacity * 2)
            .max(FIRST_CAPACITY)
            .min(self.limit + 1)
            .max(len + 1);
        let mut bigger = Zeroizing::new(Vec::with_capacity(grown));
        bigger.extend_from_slice(&self.pending);
        self.pending = bigger;
    }

    /// The first `len` pending bytes; the rest moves to the front and the vacated tail is wiped.
    /// When nothing is left the buffer goes (wiped).
    fn take(&mut self, len: usize) -> Line {
        let line = Zeroizing::new(self.pending[..len].to_vec());
        let total = self.pending.len();
        if len == total {
            self.pending = Zeroizing::new(Vec::new());
            return line;
        }
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
        // A line whose newline comes a little (or up to a 4 KiB read) past the limit is still
        // too long.
        assert_eq!(
            lines_of(&line(limit + 100), limit).await,
            vec![Err(TooLong)]
        );
        assert_eq!(
            lines_of(&line(limit + 4095), limit).await,
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

    #[tokio::test]
    async fn the_buffer_grows_only_as_far_as_the_bytes_waiting_need() {
        let (mut client, server) = tokio::net::UnixStream::pair().unwrap();
        let (reader, _writer) = server.into_split();
        let limit = 64 * 1024;
        let mut lines = ClientLines::new(reader, limit);
        assert_eq!(lines.pending.capacity(), 0);

        client.write_all(b"short\nhalf").await.unwrap();
        let first = lines.next().await.unwrap().unwrap().unwrap();
        assert_eq!(first.as_slice(), b"short\n");
        assert_eq!(lines.pending.as_slice(), b"half");
        assert_eq!(lines.pending.capacity(), FIRST_CAPACITY);
        client.write_all(b" a line\n").await.unwrap();
        let second = lines.next().await.unwrap().unwrap().unwrap();
        assert_eq!(second.as_slice(), b"half a line\n");
        // Nothing waits: the buffer is gone until the next byte comes.
        assert_eq!(lines.pending.capacity(), 0);

        // A line over the limit: the buffer stops at the byte that tells.
        let sending = tokio::spawn(async move {
            let _ = client.write_all(&line(limit + 4095)).await;
        });
        assert_eq!(lines.next().await.unwrap(), Some(Err(TooLong)));
        assert_eq!(lines.pending.len(), limit + 1);
        assert_eq!(lines.pending.capacity(), limit + 1);
        drop(lines);
        sending.await.unwrap();
    }
}
