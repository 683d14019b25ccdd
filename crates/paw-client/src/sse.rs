//! A minimal server-sent-events parser (the WHATWG "event stream interpretation"), for the
//! broker's `GET /v1/events`.
//!
//! Rules:
//! - Bytes arrive in arbitrary chunks: a line, a UTF-8 sequence or a CRLF may be split across
//!   two of them, so nothing is interpreted before its line is complete.
//! - Lines end with CRLF, LF or CR. `:` starts a comment (the broker's keep-alive). `event` and
//!   `data` are used; `id` and `retry` are ignored (the core has its own reconnection policy
//!   and the broker does not replay).
//! - Bounded: a line or an event larger than the parser's limit ([`MAX_EVENT_BYTES`] unless
//!   given, [`SseParser::with_limit`]) is an error, so a broker (or anything in its place)
//!   cannot make the core buffer without limit.

/// Largest line, and largest `data` of one event. Live events are a few hundred bytes.
pub(crate) const MAX_EVENT_BYTES: usize = 64 * 1024;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event` field; `message` when the event had none.
    pub(crate) event: String,
    /// The `data` lines joined with `\n`.
    pub(crate) data: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the event stream has a line or an event over its size limit")]
pub(crate) struct TooLarge;

#[derive(Debug, Default)]
pub(crate) struct SseParser {
    line: Vec<u8>,
    /// The previous chunk ended with CR: an LF at the start of the next one belongs to it.
    after_cr: bool,
    /// Nothing seen yet: a leading UTF-8 BOM is skipped.
    at_start: bool,
    event: String,
    data: String,
    has_data: bool,
    /// Largest line, and largest `data` of one event.
    limit: usize,
}

impl SseParser {
    pub(crate) fn new() -> Self {
        Self::with_limit(MAX_EVENT_BYTES)
    }

    /// A parser for a stream whose events may be larger than live events (a watched
    /// terminal's screen and output chunks).
    pub(crate) fn with_limit(limit: usize) -> Self {
        Self {
            at_start: true,
            limit,
            ..Self::default()
        }
    }

    /// Feeds the next chunk; returns the events it completed, in order.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, TooLarge> {
        let mut out = Vec::new();
        let mut rest = chunk;
        if self.at_start && !rest.is_empty() {
            // Only a complete BOM at the very start counts; the broker never sends one anyway.
            if let Some(r) = rest.strip_prefix(b"\xEF\xBB\xBF") {
                rest = r;
            }
            self.at_start = false;
        }
        for &b in rest {
            match b {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(ev) = self.line_done(&line)? {
                        out.push(ev);
                    }
                }
                _ => {
                    self.after_cr = false;
                    if self.line.len() >= self.limit {
                        return Err(TooLarge);
                    }
                    self.line.push(b);
                }
            }
        }
        Ok(out)
    }

    fn line_done(&mut self, line: &[u8]) -> Result<Option<SseEvent>, TooLarge> {
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        if line[0] == b':' {
            return Ok(None);
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &[][..]),
        };
        // Lossy like a browser: a broken sequence becomes U+FFFD rather than ending the stream.
        let value = String::from_utf8_lossy(value);
        match name {
            b"event" => self.event = value.into_owned(),
            b"data" => {
                if self.data.len() + value.len() + 1 > self.limit {
                    return Err(TooLarge);
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&value);
                self.has_data = true;
            }
            _ => {}
        }
        Ok(None)
    }

    /// A blank line: the event so far is complete. One without data is dropped, as the
    /// standard says, and its name is forgotten.
    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = std::mem::take(&mut self.event);
        let data = std::mem::take(&mut self.data);
        let had = std::mem::replace(&mut self.has_data, false);
        had.then(|| SseEvent {
            event: if event.is_empty() {
                "message".into()
            } else {
                event
            },
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
        }
    }

    fn all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        chunks.iter().flat_map(|c| p.push(c).unwrap()).collect()
    }

    #[test]
    fn parses_named_events_like_the_broker_sends() {
        let got = all(&[b"event: grant_started\ndata: {\"a\":1}\n\nevent: resync\ndata: {}\n\n"]);
        assert_eq!(
            got,
            vec![ev("grant_started", "{\"a\":1}"), ev("resync", "{}")]
        );
    }

    #[test]
    fn any_split_of_the_bytes_gives_the_same_events() {
        let stream: &[u8] =
            b":keep-alive\r\nevent: a\r\ndata: x\r\ndata:  y\r\n\r\nevent:b\rdata:z\r\r: c\n\ndata\n\n";
        let want = vec![ev("a", "x\n y"), ev("b", "z"), ev("message", "")];
        assert_eq!(all(&[stream]), want);
        for cut in 0..=stream.len() {
            let (a, b) = stream.split_at(cut);
            assert_eq!(all(&[a, b]), want, "split at {cut}");
        }
        // One byte at a time, so every CR/LF pair is split.
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(all(&bytes), want);
    }

    #[test]
    fn crlf_split_between_chunks_is_one_line_break() {
        // If the LF after a chunk-final CR counted as a second (blank) line, the first event
        // would be dispatched before its data line.
        let got = all(&[b"event: a\r", b"\ndata: 1\r", b"\n\r", b"\n"]);
        assert_eq!(got, vec![ev("a", "1")]);
    }

    #[test]
    fn multi_line_data_is_joined_with_newlines() {
        let got = all(&[b"data: one\ndata: two\ndata:\ndata: four\n\n"]);
        assert_eq!(got, vec![ev("message", "one\ntwo\n\nfour")]);
    }

    #[test]
    fn comments_keep_alives_and_events_without_data_dispatch_nothing() {
        let got = all(&[b": ping\n\n:\n\nevent: lonely\n\nid: 7\nretry: 10\n\n"]);
        assert!(got.is_empty(), "{got:?}");
        // The name of a dataless event does not leak into the next one.
        let got = all(&[b"event: lonely\n\ndata: d\n\n"]);
        assert_eq!(got, vec![ev("message", "d")]);
    }

    #[test]
    fn an_unterminated_event_is_not_dispatched() {
        let mut p = SseParser::new();
        assert!(p.push(b"event: a\ndata: 1\n").unwrap().is_empty());
        assert!(p.push(b"data: 2").unwrap().is_empty());
        assert_eq!(p.push(b"\n\n").unwrap(), vec![ev("a", "1\n2")]);
    }

    #[test]
    fn utf8_split_across_chunks_survives_and_a_bom_is_skipped() {
        let s = "data: héllo ✓\n\n".as_bytes();
        let mut with_bom = b"\xEF\xBB\xBF".to_vec();
        with_bom.extend_from_slice(s);
        for cut in 0..=with_bom.len() {
            let (a, b) = with_bom.split_at(cut);
            if cut > 0 && cut < 3 {
                // A BOM split across chunks is not recognised (never sent by the broker).
                continue;
            }
            assert_eq!(all(&[a, b]), vec![ev("message", "héllo ✓")], "cut {cut}");
        }
    }

    #[test]
    fn oversized_lines_and_events_are_refused() {
        let mut p = SseParser::new();
        let long = vec![b'x'; MAX_EVENT_BYTES + 1];
        assert_eq!(p.push(&long), Err(TooLarge));
        let mut p = SseParser::new();
        let line = format!("data: {}\n", "y".repeat(MAX_EVENT_BYTES / 2));
        assert!(p.push(line.as_bytes()).is_ok());
        assert_eq!(p.push(line.as_bytes()), Err(TooLarge));
        // A larger limit where asked for.
        let mut p = SseParser::with_limit(4 * MAX_EVENT_BYTES);
        assert!(p.push(&long).is_ok());
        assert!(p.push(b"\n").is_ok());
        assert_eq!(p.push(&vec![b'x'; 4 * MAX_EVENT_BYTES + 1]), Err(TooLarge));
    }
}
