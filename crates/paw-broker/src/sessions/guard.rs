//! The line being typed in an interactive shell, known well enough to check it at Enter
//! (issue #15, J1/J2 for shells).
//!
//! Two models of the line, and the guard says which one it used:
//! - **What was typed.** While the user types printable text and only the editing keys that a
//!   terminal's line discipline and readline agree on (backspace, ^U, ^W), the keystrokes alone
//!   give the exact line, whatever the target echoes — even with echo turned off.
//! - **What the screen shows.** Once a key the keystrokes cannot follow is used (an arrow, Tab,
//!   history, a yank), the line is read off a terminal emulator (vt100) fed with the target's
//!   output: from where the cursor stood at the line's first keystroke to the end of the
//!   cursor's (possibly wrapped) row. The caller waits for the echo to settle before reading.
//!   A screen line is never exact: what the user cannot see (echo off) it cannot see either,
//!   which is why it comes with a reason the caller treats as undecidable when it is empty.
//!
//! Lines that the shell will continue (an open quote, a trailing backslash, a here-document)
//! are kept and checked again, joined, at each following Enter: nothing runs until the whole
//! command is complete, and then the whole of it is checked.
//!
//! Pure: bytes in, text out. The bridge owns timing, decisions and the channels.

/// Bytes of text kept for one command (continuation lines included). A line longer than this
/// is not checked piecemeal: it is refused as a whole.
pub(crate) const MAX_LINE: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Esc {
    None,
    /// After ESC.
    Start,
    /// In a CSI sequence (`ESC [`): parameters so far, up to a final byte.
    Csi,
    /// `ESC O x`: one more byte.
    Ss3,
}

/// What the guard knows of the current command when Enter is pressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    /// Continuation lines joined by `\n`, then the current line.
    pub text: String,
    /// Why the text may not be the line the shell holds, if it may not be.
    pub doubt: Option<String>,
}

pub(crate) struct LineGuard {
    screen: vt100::Parser,
    /// Earlier lines of a command the shell is still reading, each followed by `\n`.
    pending: String,
    /// The current line as typed, while `exact`.
    typed: Vec<u8>,
    /// The keystrokes alone still give the line.
    exact: bool,
    /// The line has had a keystroke.
    started: bool,
    /// Where the line's first keystroke found the cursor (row, col), when the screen had
    /// settled then; `None` when the user typed ahead of the target's output.
    start: Option<(u16, u16)>,
    /// The text before `start` on its row the last time it was known: the prompt, which the
    /// screen model strips when the line's own start is unknown.
    prompt: String,
    esc: Esc,
    csi: Vec<u8>,
    paste: bool,
    too_long: bool,
    /// The broker made the shell drop a line: whether it did is the shell's business (bash
    /// redraws the old line when ^C lands while readline is busy), so the next line is read
    /// off the screen, its whole row, and never assumed to start empty.
    distrust: bool,
}

impl std::fmt::Debug for LineGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The line may hold anything the user typed: not for logs.
        f.debug_struct("LineGuard").finish_non_exhaustive()
    }
}

impl LineGuard {
    pub(crate) fn new(cols: u32, rows: u32) -> Self {
        Self {
            screen: vt100::Parser::new(clamp(rows), clamp(cols), 0),
            pending: String::new(),
            typed: Vec::new(),
            exact: true,
            started: false,
            start: None,
            prompt: String::new(),
            esc: Esc::None,
            csi: Vec::new(),
            paste: false,
            too_long: false,
            distrust: false,
        }
    }

    /// What the target printed.
    pub(crate) fn output(&mut self, data: &[u8]) {
        self.screen.process(data);
    }

    pub(crate) fn resize(&mut self, cols: u32, rows: u32) {
        self.screen.screen_mut().set_size(clamp(rows), clamp(cols));
    }

    /// Whether a full-screen program (an editor, a pager) holds the terminal.
    pub(crate) fn full_screen(&self) -> bool {
        self.screen.screen().alternate_screen()
    }

    /// Whether the current line needs the screen (the keystrokes no longer give it).
    pub(crate) fn needs_screen(&self) -> bool {
        !self.exact
    }

    /// Whether a bracketed paste is open (its end marker not yet typed).
    pub(crate) fn in_paste(&self) -> bool {
        self.paste
    }

    /// Takes in `data` up to its first line end. Returns how many bytes were taken (they may
    /// go to the target) and whether a line end follows them at that index. `settled`: the
    /// target has answered everything sent so far, so the cursor stands where the shell
    /// will put the line.
    pub(crate) fn scan(&mut self, data: &[u8], settled: bool) -> (usize, bool) {
        for (i, &b) in data.iter().enumerate() {
            if self.esc == Esc::None && (b == b'\r' || b == b'\n') {
                return (i, true);
            }
            if !self.started {
                self.started = true;
                // Typed ahead of the output, the keystrokes still give the line; only where it
                // starts on the screen is unknown.
                let distrust = std::mem::take(&mut self.distrust);
                if distrust {
                    self.exact = false;
                }
                let settled = settled && !distrust;
                self.start = settled.then(|| self.screen.screen().cursor_position());
                if let Some((row, col)) = self.start {
                    // Typed right after a command's output, before its prompt: nothing to learn.
                    let prompt = self.screen.screen().contents_between(row, 0, row, col);
                    if !prompt.trim().is_empty() {
                        self.prompt = prompt;
                    }
                }
            }
            self.key(b);
        }
        (data.len(), false)
    }

    fn key(&mut self, b: u8) {
        match self.esc {
            Esc::Start => {
                self.esc = match b {
                    b'[' => {
                        self.csi.clear();
                        Esc::Csi
                    }
                    b'O' => Esc::Ss3,
                    _ => {
                        // Alt-key: a readline command the keystrokes cannot follow.
                        self.exact = false;
                        Esc::None
                    }
                };
                return;
            }
            Esc::Csi => {
                if (0x40..=0x7e).contains(&b) {
                    self.esc = Esc::None;
                    match (self.csi.as_slice(), b) {
                        (b"200", b'~') => self.paste = true,
                        (b"201", b'~') => self.paste = false,
                        // Arrows, Home/End, Delete…: the line moves in ways only the screen shows.
                        _ => self.exact = false,
                    }
                } else if self.csi.len() < 16 {
                    self.csi.push(b);
                }
                return;
            }
            Esc::Ss3 => {
                self.esc = Esc::None;
                self.exact = false;
                return;
            }
            Esc::None => {}
        }
        match b {
            0x1b => self.esc = Esc::Start,
            // Inside a paste everything but the end marker is text.
            _ if self.paste => self.push(b),
            0x7f | 0x08 => {
                // One character, which may be several bytes of UTF-8.
                while let Some(c) = self.typed.pop() {
                    if c & 0xc0 != 0x80 {
                        break;
                    }
                }
            }
            0x15 => self.typed.clear(),
            0x17 => {
                while self.typed.last() == Some(&b' ') {
                    self.typed.pop();
                }
                while self.typed.last().is_some_and(|c| *c != b' ') {
                    self.typed.pop();
                }
            }
            // ^C: the shell drops the line and any continuation.
            0x03 => {
                self.pending.clear();
                self.reset_line();
            }
            // ^D on an empty line is end-of-file; elsewhere readline deletes a character.
            0x04 if self.typed.is_empty() => {}
            0x20.. => self.push(b),
            // Tab (completion), ^R (history), ^Y (yank), ^A/^E/^K…: only the screen knows.
            _ => self.exact = false,
        }
    }

    fn push(&mut self, b: u8) {
        if self.pending.len() + self.typed.len() >= MAX_LINE {
            self.too_long = true;
        } else {
            self.typed.push(b);
        }
    }

    /// The command as it stands at a line end.
    pub(crate) fn line(&self) -> Line {
        let mut doubt = None;
        let current = if self.exact {
            String::from_utf8_lossy(&self.typed).into_owned()
        } else {
            let (text, why) = self.screen_line();
            doubt = why;
            text
        };
        if self.too_long {
            doubt = Some(format!("the command is longer than {MAX_LINE} bytes"));
        }
        Line {
            text: format!("{}{current}", self.pending),
            doubt,
        }
    }

    /// The text from the line's start to the end of the cursor's logical row.
    fn screen_line(&self) -> (String, Option<String>) {
        let screen = self.screen.screen();
        let (rows, cols) = screen.size();
        let (cur_row, _) = screen.cursor_position();
        let mut last = cur_row;
        while last + 1 < rows && screen.row_wrapped(last) {
            last += 1;
        }
        let mut first = cur_row;
        while first > 0 && screen.row_wrapped(first - 1) {
            first -= 1;
        }
        let (text, why) = match self.start {
            Some((r, c)) if r >= first && r <= cur_row => {
                (screen.contents_between(r, c, last, cols), None)
            }
            // Typed ahead, or the screen scrolled since: the line is the cursor's whole row,
            // less the prompt last seen. A prompt that changed cannot be told from the command.
            _ => {
                let whole = screen.contents_between(first, 0, last, cols);
                // The emulator drops a row's trailing blanks, so the prompt is compared
                // without them.
                let prompt = self.prompt.trim_end();
                match whole.strip_prefix(prompt) {
                    Some(rest) if !prompt.is_empty() => (rest.trim_start().to_owned(), None),
                    _ => (
                        whole,
                        Some("where the line starts on the terminal is not known".to_owned()),
                    ),
                }
            }
        };
        let text = text.trim_end().to_owned();
        let why = why.or_else(|| {
            (text.trim().is_empty() && !self.typed.is_empty())
                .then(|| "what was typed does not show on the terminal (echo off?)".to_owned())
        });
        (text, why)
    }

    /// After a line end went to the target: the shell will read more of the same command.
    pub(crate) fn continued(&mut self) {
        let line = self.line();
        self.pending = line.text;
        self.pending.push('\n');
        self.reset_line();
    }

    /// After a line end went to the target (the command is complete), or after the line was
    /// dropped: the next keystroke starts a new command.
    pub(crate) fn done(&mut self) {
        self.pending.clear();
        self.reset_line();
        self.too_long = false;
    }

    /// After the broker made the shell drop the line (^C, closing any paste): nothing of it
    /// is left in the shell.
    pub(crate) fn dropped(&mut self) {
        self.done();
        self.paste = false;
        self.esc = Esc::None;
        self.distrust = true;
    }

    fn reset_line(&mut self) {
        self.typed.clear();
        self.exact = true;
        self.started = false;
        self.start = None;
    }
}

fn clamp(n: u32) -> u16 {
    n.clamp(2, 1000) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(g: &mut LineGuard, s: &[u8]) -> (usize, bool) {
        g.scan(s, true)
    }

    impl LineGuard {
        fn scan_t(&mut self, s: &[u8]) -> (usize, bool) {
            self.scan(s, true)
        }
    }

    #[test]
    fn plain_typing_with_edits_is_exact() {
        let mut g = LineGuard::new(80, 24);
        g.output(b"$ ");
        assert_eq!(typed(&mut g, b"rx\x7fm -rf /tmp/a\r"), (15, true));
        let l = g.line();
        assert_eq!(l.text, "rm -rf /tmp/a");
        assert_eq!(l.doubt, None);
        g.done();
        g.scan_t(b"ls foo\x17\x17rm x");
        assert_eq!(g.line().text, "rm x");
        g.done();
        g.scan_t(b"echo hi\x15rm y");
        assert_eq!(g.line().text, "rm y");
    }

    #[test]
    fn echo_off_does_not_hide_a_typed_line() {
        let mut g = LineGuard::new(80, 24);
        g.output(b"$ ");
        // Nothing is echoed: the keystrokes still give the line.
        g.scan_t(b"rm x");
        assert_eq!(g.line().text, "rm x");
    }

    #[test]
    fn arrows_switch_to_the_screen_and_its_doubts() {
        let mut g = LineGuard::new(80, 24);
        g.output(b"user@host:~$ ");
        g.scan_t(b"m x\x1b[D\x1b[D\x1b[D");
        assert!(g.needs_screen());
        // The shell's echo: "m x", three lefts, then "r" inserted and the rest redrawn.
        g.output(b"m x\x08\x08\x08rm x\x08\x08\x08");
        g.scan_t(b"r");
        let l = g.line();
        assert_eq!(l.text, "rm x");
        assert_eq!(l.doubt, None);
        g.done();
        // Echo off and an arrow: nothing to read, which is said.
        g.output(b"\r\nuser@host:~$ ");
        g.scan_t(b"rm x\x1b[D");
        let l = g.line();
        assert_eq!(l.text, "");
        assert!(l.doubt.unwrap().contains("echo off"));
    }

    #[test]
    fn typed_ahead_the_prompt_last_seen_is_stripped() {
        let mut g = LineGuard::new(80, 24);
        g.output(b"root@web:~# ");
        g.scan_t(b"echo rm x\r");
        g.done();
        // Up-arrow sent before the output of `echo` came back.
        g.scan(b"\x1b[A\x01\x04\x04\x04\x04\x04", false);
        g.output(b"echo rm x\r\nrm x\r\nroot@web:~# rm x");
        assert_eq!(
            g.line(),
            Line {
                text: "rm x".into(),
                doubt: None
            }
        );
        g.done();
        // Another prompt: said to be unknown, and the whole row is checked.
        g.scan(b"\x1b[A", false);
        g.output(b"\r\n(venv) root@web:~# rm x");
        let l = g.line();
        assert_eq!(l.text, "(venv) root@web:~# rm x");
        assert!(l.doubt.is_some());
    }

    #[test]
    fn after_a_dropped_line_the_next_is_read_off_the_screen_whole() {
        let mut g = LineGuard::new(80, 24);
        g.output(b"root@web:~# ");
        g.scan_t(b"ls $(rm x)");
        g.dropped();
        // bash took the ^C while busy and drew the old line again after a new prompt.
        g.output(b"ls $(rm x)^C\r\nroot@web:~# ls $(rm x)");
        g.scan_t(b"echo hi");
        g.output(b"echo hi");
        assert!(g.needs_screen());
        assert_eq!(g.line().text, "ls $(rm x)echo hi");
    }

    #[test]
    fn a_wrapped_line_is_read_whole() {
        let mut g = LineGuard::new(20, 5);
        g.output(b"$ ");
        g.scan_t(b"\t");
        g.output(b"echo aaaaaaaaaaaaaaaaaaaaaaaa; rm x");
        assert_eq!(g.line().text, "echo aaaaaaaaaaaaaaaaaaaaaaaa; rm x");
    }

    #[test]
    fn continuation_lines_are_joined() {
        let mut g = LineGuard::new(80, 24);
        assert_eq!(g.scan_t(b"r\\\rm x\r"), (2, true));
        g.continued();
        assert_eq!(g.scan_t(b"m x\r"), (3, true));
        assert_eq!(g.line().text, "r\\\nm x");
        g.done();
        assert_eq!(g.line().text, "");
    }

    #[test]
    fn paste_markers_are_not_text_and_ctrl_c_drops_everything() {
        let mut g = LineGuard::new(80, 24);
        let (n, end) = g.scan_t(b"\x1b[200~true\nrm x\x1b[201~\r");
        assert!(end);
        assert!(g.in_paste());
        assert_eq!(g.line().text, "true");
        assert_eq!(n, 10);
        g.continued();
        // Inside the paste ^C is text; after it, it drops the line and its continuation.
        assert_eq!(g.scan_t(b"rm x\x03\x1b[201~"), (11, false));
        assert_eq!(g.line().text, "true\nrm x\u{3}");
        assert!(!g.in_paste());
        g.scan_t(b"\x03");
        assert_eq!(g.line().text, "");
    }

    #[test]
    fn an_overlong_command_is_in_doubt() {
        let mut g = LineGuard::new(80, 24);
        g.scan_t(&vec![b'a'; MAX_LINE + 10]);
        let l = g.line();
        assert!(l.doubt.unwrap().contains("longer"));
        assert!(l.text.len() <= MAX_LINE);
    }
}
