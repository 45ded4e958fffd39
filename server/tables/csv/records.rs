//! Records from CSV bytes: `csv_core` fed with chunks of any size, one record in memory at a
//! time. [`RecordReader`] is pure; [`Source`] pulls the chunks from a stream.

use super::CsvError;
use futures_core::Stream;
use std::fmt::Display;
use std::pin::Pin;

/// The largest record accepted, in bytes of the file (its line ending included). A longer
/// one stops the import: nothing is written.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

const BOM: &[u8; 3] = b"\xEF\xBB\xBF";

/// What [`RecordReader::read`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// A record is complete; see [`RecordReader::record`].
    Record,
    /// The input is used up; call again with more (or with an empty slice at the end).
    NeedInput,
    /// There are no more records.
    End,
}

/// Splits CSV bytes, pushed in chunks of any size, into records (RFC 4180 quoting; LF, CRLF or
/// CR line endings; blank lines skipped; a leading UTF-8 byte-order mark dropped). Keeps one
/// record in memory and refuses one longer than [`MAX_RECORD_BYTES`].
pub struct RecordReader {
    csv: csv_core::Reader,
    out: Vec<u8>,
    out_len: usize,
    ends: Vec<usize>,
    ends_len: usize,
    /// Input bytes consumed by the record being read.
    record_bytes: usize,
    /// Bytes of a leading byte-order mark seen so far; `None` once decided.
    bom: Option<usize>,
    last_byte: u8,
    end_line: u64,
    has_record: bool,
}

impl Default for RecordReader {
    fn default() -> Self {
        RecordReader::new()
    }
}

impl RecordReader {
    pub fn new() -> RecordReader {
        RecordReader {
            csv: csv_core::Reader::new(),
            out: vec![0; 64 << 10],
            out_len: 0,
            ends: vec![0; 64],
            ends_len: 0,
            record_bytes: 0,
            bom: Some(0),
            last_byte: 0,
            end_line: 0,
            has_record: false,
        }
    }

    /// Reads from `input` until a record is complete or `input` is used up; an empty `input`
    /// means the data has ended. Returns what happened and how many bytes were consumed.
    /// `Err(line)` when a record grows past [`MAX_RECORD_BYTES`].
    pub fn read(&mut self, input: &[u8]) -> Result<(Next, usize), u64> {
        if self.has_record {
            self.has_record = false;
            self.out_len = 0;
            self.ends_len = 0;
            self.record_bytes = 0;
        }
        let mut used = 0;
        if let Some(mut seen) = self.bom {
            let at_end = input.is_empty();
            while seen < BOM.len() && used < input.len() && input[used] == BOM[seen] {
                seen += 1;
                used += 1;
            }
            if seen < BOM.len() && used == input.len() && !at_end {
                self.bom = Some(seen);
                return Ok((Next::NeedInput, used));
            }
            self.bom = None;
            if seen < BOM.len() && seen > 0 {
                // Not a byte-order mark after all: those bytes are data.
                self.step(&BOM[..seen])?;
            }
            if used == input.len() && !at_end {
                return Ok((Next::NeedInput, used));
            }
        }
        let (next, n) = self.step(&input[used..])?;
        Ok((next, used + n))
    }

    fn step(&mut self, input: &[u8]) -> Result<(Next, usize), u64> {
        let mut used = 0;
        loop {
            let (res, nin, nout, nend) = self.csv.read_record(
                &input[used..],
                &mut self.out[self.out_len..],
                &mut self.ends[self.ends_len..],
            );
            used += nin;
            self.out_len += nout;
            self.ends_len += nend;
            self.record_bytes += nin;
            if nin > 0 {
                self.last_byte = input[used - 1];
            }
            if self.record_bytes > MAX_RECORD_BYTES {
                return Err(self.csv.line());
            }
            match res {
                csv_core::ReadRecordResult::InputEmpty => return Ok((Next::NeedInput, used)),
                csv_core::ReadRecordResult::OutputFull => {
                    // Output never outgrows input, so the record limit above stops this first.
                    let n = (self.out.len() * 2).min(MAX_RECORD_BYTES + 1);
                    if n == self.out.len() {
                        return Err(self.csv.line());
                    }
                    self.out.resize(n, 0);
                }
                csv_core::ReadRecordResult::OutputEndsFull => {
                    let n = self.ends.len() * 2;
                    self.ends.resize(n, 0);
                }
                csv_core::ReadRecordResult::Record => {
                    self.has_record = true;
                    // csv_core counts the `\n`s it consumed; a record ended by `\n` has taken
                    // its own, one ended by `\r\n` leaves the `\n` for the next record.
                    self.end_line = self.csv.line() - u64::from(self.last_byte == b'\n');
                    return Ok((Next::Record, used));
                }
                csv_core::ReadRecordResult::End => return Ok((Next::End, used)),
            }
        }
    }

    /// The record found by the last [`read`](Self::read) that returned [`Next::Record`].
    pub fn record(&self) -> Record<'_> {
        Record {
            data: &self.out[..self.out_len],
            ends: &self.ends[..self.ends_len],
            end_line: self.end_line,
        }
    }
}

/// One record: its unquoted fields, as bytes (not yet checked to be UTF-8).
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    data: &'a [u8],
    ends: &'a [usize],
    end_line: u64,
}

impl<'a> Record<'a> {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn field(&self, i: usize) -> &'a [u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.data[start..self.ends[i]]
    }

    /// The line of the file where the record starts (quoted fields may span lines).
    pub fn line(&self) -> u64 {
        let inside = self.data.iter().filter(|&&b| b == b'\n').count() as u64;
        self.end_line.saturating_sub(inside).max(1)
    }
}

/// Records read from a stream of chunks.
pub(super) struct Source<S, B> {
    body: S,
    chunk: Option<B>,
    pos: usize,
    ended: bool,
    reader: RecordReader,
}

impl<S, B, E> Source<S, B>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    E: Display,
{
    pub(super) fn new(body: S) -> Self {
        Source {
            body,
            chunk: None,
            pos: 0,
            ended: false,
            reader: RecordReader::new(),
        }
    }

    /// Moves to the next record; `false` at the end of the data.
    pub(super) async fn next_record(&mut self) -> Result<bool, CsvError> {
        loop {
            if self.chunk.is_none() && !self.ended {
                match std::future::poll_fn(|cx| Pin::new(&mut self.body).poll_next(cx)).await {
                    Some(Ok(c)) if c.as_ref().is_empty() => continue,
                    Some(Ok(c)) => {
                        self.chunk = Some(c);
                        self.pos = 0;
                    }
                    Some(Err(e)) => return Err(CsvError::Body(e.to_string())),
                    None => self.ended = true,
                }
            }
            let input: &[u8] = match &self.chunk {
                Some(c) => &c.as_ref()[self.pos..],
                None => &[],
            };
            let at_end = input.is_empty();
            let (next, used) = self
                .reader
                .read(input)
                .map_err(|line| CsvError::LineTooLarge { line })?;
            self.pos += used;
            if self
                .chunk
                .as_ref()
                .is_some_and(|c| self.pos >= c.as_ref().len())
            {
                self.chunk = None;
            }
            match next {
                Next::Record => return Ok(true),
                Next::End => return Ok(false),
                Next::NeedInput if at_end => {
                    return Ok(false);
                }
                Next::NeedInput => {}
            }
        }
    }

    /// The record found by the last `next_record` that returned `true`.
    pub(super) fn record(&self) -> Record<'_> {
        self.reader.record()
    }

    /// The first record as column names (trimmed); `Empty` when there is none.
    pub(super) async fn header(&mut self) -> Result<Vec<String>, CsvError> {
        if !self.next_record().await? {
            return Err(CsvError::Empty);
        }
        let rec = self.reader.record();
        (0..rec.len())
            .map(|i| {
                std::str::from_utf8(rec.field(i))
                    .map(|s| s.trim().to_string())
                    .map_err(|_| {
                        CsvError::InvalidHeader(format!(
                            "column {} of the header is not valid UTF-8 (send the file as UTF-8)",
                            i + 1
                        ))
                    })
            })
            .collect()
    }
}

/// Helpers for tests here and in the parent module.
#[cfg(test)]
pub(super) mod testing {
    use futures_core::Stream;
    use std::collections::VecDeque;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// A body that yields the given chunks.
    pub struct Chunks(VecDeque<Vec<u8>>);

    impl Stream for Chunks {
        type Item = Result<Vec<u8>, String>;
        fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            Poll::Ready(self.0.pop_front().map(Ok))
        }
    }

    pub fn chunked(data: &[u8], size: usize) -> Chunks {
        Chunks(data.chunks(size.max(1)).map(<[u8]>::to_vec).collect())
    }

    pub fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    /// Every record as (line, fields), read in chunks of `size` bytes.
    async fn records(data: &[u8], size: usize) -> Result<Vec<(u64, Vec<String>)>, CsvError> {
        let mut src = Source::new(chunked(data, size));
        let mut out = Vec::new();
        while src.next_record().await? {
            let rec = src.record();
            let fields = (0..rec.len())
                .map(|i| String::from_utf8_lossy(rec.field(i)).into_owned())
                .collect();
            out.push((rec.line(), fields));
        }
        Ok(out)
    }

    /// The same records whatever the chunk size, so chunk boundaries never matter.
    async fn records_any_chunking(data: &[u8]) -> Vec<(u64, Vec<String>)> {
        let whole = records(data, data.len()).await.expect("parses");
        for size in 1..=data.len().min(16) {
            let got = records(data, size).await.expect("parses");
            assert_eq!(got, whole, "chunks of {size} bytes");
        }
        whole
    }

    #[tokio::test]
    async fn quotes_embedded_commas_and_newlines_survive_any_chunking() {
        let data = b"name,note\n\"Smith, J\",\"said \"\"hi\"\"\nthen left\"\nplain,\"\"\n";
        let got = records_any_chunking(data).await;
        assert_eq!(
            got,
            vec![
                (1, strings(&["name", "note"])),
                (2, strings(&["Smith, J", "said \"hi\"\nthen left"])),
                (4, strings(&["plain", ""])),
            ]
        );
    }

    #[tokio::test]
    async fn crlf_lines_blank_lines_and_a_missing_final_newline_are_read() {
        let data = b"a,b\r\n1,2\r\n\r\n\"x\r\ny\",3\r\n4,5";
        let got = records_any_chunking(data).await;
        assert_eq!(
            got,
            vec![
                (1, strings(&["a", "b"])),
                (2, strings(&["1", "2"])),
                (4, strings(&["x\r\ny", "3"])),
                (6, strings(&["4", "5"])),
            ]
        );
    }

    #[tokio::test]
    async fn a_byte_order_mark_is_dropped_even_when_split_across_chunks() {
        let got = records_any_chunking(b"\xEF\xBB\xBFid,name\n1,x\n").await;
        assert_eq!(got[0].1, strings(&["id", "name"]));
        // A lone 0xEF is data, not a mark (and not UTF-8: the header check refuses it).
        let got = records_any_chunking(b"\xEFa,b\n").await;
        assert_eq!(got[0].1[0].as_bytes(), "\u{FFFD}a".as_bytes());
    }

    #[tokio::test]
    async fn an_empty_body_has_no_header() {
        let mut src = Source::new(chunked(b"", 1));
        assert!(matches!(src.header().await, Err(CsvError::Empty)));
        let mut src = Source::new(chunked(b"\n\r\n", 1));
        assert!(matches!(src.header().await, Err(CsvError::Empty)));
    }

    #[tokio::test]
    async fn a_header_that_is_not_utf8_is_refused() {
        let mut src = Source::new(chunked(b"ok,\xFF\xFE\n", 4));
        match src.header().await {
            Err(CsvError::InvalidHeader(m)) => assert!(m.contains("column 2"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_record_over_one_mebibyte_stops_reading() {
        let mut data = b"a,b\n1,2\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', MAX_RECORD_BYTES + 10));
        data.extend_from_slice(b",y\n3,4\n");
        match records(&data, 8192).await {
            Err(CsvError::LineTooLarge { line }) => assert_eq!(line, 3),
            other => panic!("{other:?}"),
        }
        // A quoted field that never closes is one ever-growing record too.
        let mut data = b"a\n\"".to_vec();
        data.extend(std::iter::repeat_n(b"x\n".as_slice(), MAX_RECORD_BYTES / 2 + 1).flatten());
        assert!(matches!(
            records(&data, 65536).await,
            Err(CsvError::LineTooLarge { .. })
        ));
        // Just under the limit is fine.
        let mut data = b"a\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', MAX_RECORD_BYTES - 1));
        data.push(b'\n');
        let got = records(&data, 100_000).await.expect("fits");
        assert_eq!(got[1].1[0].len(), MAX_RECORD_BYTES - 1);
    }
}
