//! Walks brush-parser's AST of a line and collects every simple command the shell would run,
//! including those inside strings that another program hands back to a shell (`bash -c`,
//! `eval`, `alias`, `find -exec`, here-documents given to a shell…).

use brush_parser::ast;
use brush_parser::word::{ParameterExpr, WordPiece, WordPieceWithSource};
use brush_parser::{ParseError, ParserOptions};

use crate::words::{decode_ansi_c, Resolved};
use crate::{Action, CheckedCommand, CommandRules};

/// Strings handed back to a shell nest; past this depth the rest is undecidable rather than a
/// stack overflow.
const MAX_DEPTH: usize = 12;

/// Where a command's standard input comes from, which decides what a shell without `-c` runs.
#[derive(Debug, Clone)]
pub(crate) enum Stdin {
    Inherited,
    Pipe,
    File,
    /// A here-document or here-string, with its text after expansion.
    Text(Resolved),
}

/// What a program runs in turn.
enum Then {
    /// Another command, given as words (`sudo rm x` runs `rm x`).
    Argv(Vec<Resolved>),
    /// A string parsed as a command line (`bash -c 'rm x'`), with a name for messages.
    Line(Resolved, String),
}

#[derive(Default)]
struct Special {
    undecidable: Option<String>,
    then: Vec<Then>,
}

impl Special {
    fn argv(rest: &[Resolved]) -> Self {
        Self {
            undecidable: None,
            then: if rest.is_empty() {
                vec![]
            } else {
                vec![Then::Argv(rest.to_vec())]
            },
        }
    }
    fn line(s: &Resolved, what: String) -> Self {
        Self {
            undecidable: None,
            then: vec![Then::Line(s.clone(), what)],
        }
    }
    fn undecidable(why: String) -> Self {
        Self {
            undecidable: Some(why),
            then: vec![],
        }
    }
}

pub(crate) fn parser_options() -> ParserOptions {
    ParserOptions::default()
}

pub(crate) fn parse(input: &str, opts: &ParserOptions) -> Result<ast::Program, ParseError> {
    if let Some(index) = oversized_io_number(input) {
        return Err(ParseError::ParsingNear(brush_parser::SourcePosition {
            index,
            line: 1 + input[..index].matches('\n').count(),
            column: 1 + input[..index]
                .rfind('\n')
                .map_or(index, |nl| index - nl - 1),
        }));
    }
    brush_parser::Parser::new(std::io::Cursor::new(input.as_bytes()), opts).parse_program()
}

/// brush-parser 0.4.0 unwraps the number of an `N>` / `N<` redirection as an `i32`
/// (`io_number` in its peg.rs), so `echo 99999999999>x` panicked inside the parser — found by
/// the fuzz target `shell_command`, kept in fuzz/regressions/. Such a descriptor is refused
/// here first, as a line that does not parse (bash refuses it too). Digits in quotes or inside
/// a longer word are refused as well: over-refusing an absurd number costs nothing.
fn oversized_io_number(input: &str) -> Option<usize> {
    let b = input.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            i += 1;
        } else if matches!(b.get(i), Some(b'<' | b'>')) && input[start..i].parse::<i32>().is_err() {
            return Some(start);
        }
    }
    None
}

/// The shell would prompt for more rather than fail: an open quote, a trailing backslash, an
/// unterminated here-document or compound command.
pub(crate) fn is_incomplete(e: &ParseError) -> bool {
    match e {
        ParseError::ParsingAtEndOfInput => true,
        ParseError::Tokenizing { inner, .. } => inner.is_incomplete(),
        ParseError::ParsingNear(_) => false,
    }
}

pub(crate) struct Walker<'r> {
    rules: &'r CommandRules,
    opts: ParserOptions,
    pub commands: Vec<CheckedCommand>,
    pub undecidable: Vec<String>,
    depth: usize,
}

impl<'r> Walker<'r> {
    pub fn new(rules: &'r CommandRules) -> Self {
        Self {
            rules,
            opts: parser_options(),
            commands: Vec::new(),
            undecidable: Vec::new(),
            depth: 0,
        }
    }

    fn note(&mut self, why: String) {
        if !self.undecidable.contains(&why) {
            self.undecidable.push(why);
        }
    }

    pub fn program(&mut self, p: &ast::Program) {
        for cc in &p.complete_commands {
            self.list(cc);
        }
    }

    fn line_text(&mut self, text: &str, what: &str) {
        if self.depth >= MAX_DEPTH {
            self.note(format!("{what} is nested too deeply to check"));
            return;
        }
        match parse(text, &self.opts) {
            Ok(p) => {
                self.depth += 1;
                self.program(&p);
                self.depth -= 1;
            }
            Err(e) => self.note(format!("{what} does not parse: {e}")),
        }
    }

    fn list(&mut self, l: &ast::CompoundList) {
        for item in &l.0 {
            self.and_or(&item.0);
        }
    }

    fn and_or(&mut self, a: &ast::AndOrList) {
        self.pipeline(&a.first);
        for more in &a.additional {
            match more {
                ast::AndOr::And(p) | ast::AndOr::Or(p) => self.pipeline(p),
            }
        }
    }

    fn pipeline(&mut self, p: &ast::Pipeline) {
        for (i, c) in p.seq.iter().enumerate() {
            let stdin = if i == 0 {
                Stdin::Inherited
            } else {
                Stdin::Pipe
            };
            self.command(c, stdin);
        }
    }

    fn command(&mut self, c: &ast::Command, stdin: Stdin) {
        match c {
            ast::Command::Simple(s) => self.simple(s, stdin),
            ast::Command::Compound(cc, redirects) => {
                self.redirect_list(redirects.as_ref());
                self.compound(cc);
            }
            ast::Command::Function(f) => {
                self.redirect_list(f.body.1.as_ref());
                self.compound(&f.body.0);
            }
            ast::Command::ExtendedTest(t, redirects) => {
                self.redirect_list(redirects.as_ref());
                self.test(&t.expr);
            }
        }
    }

    fn redirect_list(&mut self, r: Option<&ast::RedirectList>) {
        for r in r.iter().flat_map(|r| r.0.iter()) {
            self.redirect(r);
        }
    }

    fn compound(&mut self, c: &ast::CompoundCommand) {
        match c {
            ast::CompoundCommand::Arithmetic(a) => self.arithmetic(&a.expr.value),
            ast::CompoundCommand::ArithmeticForClause(f) => {
                for e in [&f.initializer, &f.condition, &f.updater]
                    .into_iter()
                    .flatten()
                {
                    self.arithmetic(&e.value);
                }
                self.list(&f.body.list);
            }
            ast::CompoundCommand::BraceGroup(b) => self.list(&b.list),
            ast::CompoundCommand::Subshell(s) => self.list(&s.list),
            ast::CompoundCommand::ForClause(f) => {
                for w in f.values.iter().flatten() {
                    self.word(w);
                }
                self.list(&f.body.list);
            }
            ast::CompoundCommand::CaseClause(c) => {
                self.word(&c.value);
                for item in &c.cases {
                    for p in &item.patterns {
                        self.word(p);
                    }
                    if let Some(l) = &item.cmd {
                        self.list(l);
                    }
                }
            }
            ast::CompoundCommand::IfClause(i) => {
                self.list(&i.condition);
                self.list(&i.then);
                for e in i.elses.iter().flatten() {
                    if let Some(c) = &e.condition {
                        self.list(c);
                    }
                    self.list(&e.body);
                }
            }
            ast::CompoundCommand::WhileClause(w) | ast::CompoundCommand::UntilClause(w) => {
                self.list(&w.0);
                self.list(&w.1.list);
            }
            ast::CompoundCommand::Coprocess(c) => self.command(&c.body, Stdin::Pipe),
        }
    }

    fn test(&mut self, e: &ast::ExtendedTestExpr) {
        match e {
            ast::ExtendedTestExpr::And(a, b) | ast::ExtendedTestExpr::Or(a, b) => {
                self.test(a);
                self.test(b);
            }
            ast::ExtendedTestExpr::Not(a) | ast::ExtendedTestExpr::Parenthesized(a) => self.test(a),
            ast::ExtendedTestExpr::UnaryTest(_, w) => {
                self.word(w);
            }
            ast::ExtendedTestExpr::BinaryTest(_, a, b) => {
                self.word(a);
                self.word(b);
            }
        }
    }

    /// Arithmetic text runs no command itself, but may hold substitutions.
    fn arithmetic(&mut self, text: &str) {
        if let Ok(pieces) = brush_parser::word::parse(text, &self.opts) {
            let mut r = Resolved::default();
            self.pieces(text, &pieces, false, &mut r);
        } else if text.contains("$(") || text.contains('`') {
            self.note(format!("arithmetic {text:?} does not parse"));
        }
    }

    /// The redirect's own words are expanded (and their substitutions run); a here-document or
    /// here-string becomes the command's standard input.
    fn redirect(&mut self, r: &ast::IoRedirect) -> Option<Stdin> {
        match r {
            ast::IoRedirect::File(fd, kind, target) => {
                let input = matches!(fd, None | Some(0))
                    && matches!(
                        kind,
                        ast::IoFileRedirectKind::Read | ast::IoFileRedirectKind::ReadAndWrite
                    );
                match target {
                    ast::IoFileRedirectTarget::Filename(w)
                    | ast::IoFileRedirectTarget::Duplicate(w) => {
                        self.word(w);
                    }
                    ast::IoFileRedirectTarget::Fd(_) => {}
                    ast::IoFileRedirectTarget::ProcessSubstitution(_, s) => self.list(&s.list),
                }
                input.then_some(Stdin::File)
            }
            ast::IoRedirect::HereDocument(fd, doc) => {
                let text = if doc.requires_expansion {
                    match brush_parser::word::parse_heredoc(&doc.doc.value, &self.opts) {
                        Ok(pieces) => {
                            let mut r = Resolved::default();
                            self.pieces(&doc.doc.value, &pieces, true, &mut r);
                            r
                        }
                        Err(e) => {
                            self.note(format!("here-document does not parse: {e}"));
                            Resolved::literal(&doc.doc.value)
                        }
                    }
                } else {
                    Resolved::literal(&doc.doc.value)
                };
                matches!(fd, None | Some(0)).then_some(Stdin::Text(text))
            }
            ast::IoRedirect::HereString(fd, w) => {
                let mut text = self.word(w);
                text.text.push('\n');
                matches!(fd, None | Some(0)).then_some(Stdin::Text(text))
            }
            ast::IoRedirect::OutputAndError(w, _) => {
                self.word(w);
                None
            }
        }
    }

    /// Resolves a word, checking every substitution in it on the way.
    fn word(&mut self, w: &ast::Word) -> Resolved {
        let mut r = Resolved {
            raw: w.value.clone(),
            ..Resolved::default()
        };
        match brush_parser::word::parse(&w.value, &self.opts) {
            Ok(pieces) => {
                self.pieces(&w.value, &pieces, false, &mut r);
                if r.globs.is_empty() && w.value.contains('{') {
                    r.braces = has_brace_expansion(&w.value, &self.opts);
                }
            }
            Err(e) => {
                self.note(format!("word {} does not parse: {e}", w.value));
                r.push_dynamic(&w.value);
            }
        }
        r
    }

    fn pieces(
        &mut self,
        src: &str,
        pieces: &[WordPieceWithSource],
        quoted: bool,
        r: &mut Resolved,
    ) {
        for p in pieces {
            let source = src
                .get(p.start_index..p.end_index)
                .filter(|s| !s.is_empty())
                .map(str::to_owned);
            match &p.piece {
                WordPiece::Text(t) => r.push_literal(t, quoted),
                WordPiece::SingleQuotedText(t) => r.push_literal(t, true),
                WordPiece::AnsiCQuotedText(t) => r.push_literal(&decode_ansi_c(t), true),
                WordPiece::DoubleQuotedSequence(inner)
                | WordPiece::GettextDoubleQuotedSequence(inner) => {
                    self.pieces(src, inner, true, r);
                }
                WordPiece::EscapeSequence(e) => {
                    let escaped = e.strip_prefix('\\').unwrap_or(e);
                    if escaped == "\n" {
                        // A line continuation: the word goes on.
                    } else if quoted && !matches!(escaped, "$" | "`" | "\"" | "\\") {
                        r.push_literal(e, true);
                    } else {
                        r.push_literal(escaped, true);
                    }
                }
                WordPiece::TildeExpansion(_) => {
                    r.push_dynamic(source.as_deref().unwrap_or("~"));
                }
                WordPiece::ParameterExpansion(expr) => {
                    for s in parameter_strings(expr) {
                        if let Ok(inner) = brush_parser::word::parse(s, &self.opts) {
                            let mut scratch = Resolved::default();
                            self.pieces(s, &inner, quoted, &mut scratch);
                        }
                    }
                    r.push_dynamic(source.as_deref().unwrap_or("${…}"));
                }
                WordPiece::CommandSubstitution(s) => {
                    self.line_text(s, "command substitution");
                    r.push_dynamic(&source.unwrap_or_else(|| format!("$({s})")));
                }
                WordPiece::BackquotedCommandSubstitution(s) => {
                    self.line_text(s, "command substitution");
                    r.push_dynamic(&source.unwrap_or_else(|| format!("`{s}`")));
                }
                WordPiece::ArithmeticExpression(e) => {
                    self.arithmetic(&e.value);
                    r.push_dynamic(&source.unwrap_or_else(|| format!("$(({}))", e.value)));
                }
            }
        }
    }

    fn simple(&mut self, s: &ast::SimpleCommand, mut stdin: Stdin) {
        let mut argv = Vec::new();
        for item in s.prefix.iter().flat_map(|p| p.0.iter()) {
            self.item(item, true, &mut argv, &mut stdin);
        }
        if let Some(name) = &s.word_or_name {
            argv.push(self.word(name));
        }
        for item in s.suffix.iter().flat_map(|p| p.0.iter()) {
            self.item(item, false, &mut argv, &mut stdin);
        }
        self.run(&argv, &stdin);
    }

    fn item(
        &mut self,
        item: &ast::CommandPrefixOrSuffixItem,
        in_prefix: bool,
        argv: &mut Vec<Resolved>,
        stdin: &mut Stdin,
    ) {
        match item {
            ast::CommandPrefixOrSuffixItem::IoRedirect(r) => {
                if let Some(input) = self.redirect(r) {
                    *stdin = input;
                }
            }
            ast::CommandPrefixOrSuffixItem::Word(w) => argv.push(self.word(w)),
            ast::CommandPrefixOrSuffixItem::AssignmentWord(a, w) => {
                if in_prefix {
                    // `A=1 rm x` runs rm: the assignment only matters for its substitutions.
                    self.assignment(a);
                } else {
                    argv.push(self.word(w));
                }
            }
            ast::CommandPrefixOrSuffixItem::ProcessSubstitution(_, sub) => {
                self.list(&sub.list);
                let mut r = Resolved::default();
                r.push_dynamic("<(…)");
                r.raw = "<(…)".into();
                argv.push(r);
            }
        }
    }

    fn assignment(&mut self, a: &ast::Assignment) {
        match &a.value {
            ast::AssignmentValue::Scalar(w) => {
                self.word(w);
            }
            ast::AssignmentValue::Array(items) => {
                for (k, v) in items {
                    if let Some(k) = k {
                        self.word(k);
                    }
                    self.word(v);
                }
            }
        }
    }

    /// Checks one command given as words, then what it runs in turn.
    fn run(&mut self, argv: &[Resolved], stdin: &Stdin) {
        let Some(first) = argv.first() else {
            return;
        };
        let (program, unknown) = first.basename();
        let rest = &argv[1..];
        let special = if unknown.is_none() {
            self.special(&program, rest, stdin)
        } else {
            Special::default()
        };
        // A string parsed again after expansion (`bash -c "$x"`, `eval "rm $x"`) can hold any
        // command: what is literal in it is still checked below.
        let expanded = special.then.iter().find_map(|t| match t {
            Then::Line(s, what) if !s.is_literal() => Some(format!(
                "{what} contains {}, expanded before it is parsed",
                s.dynamic.join(", ")
            )),
            _ => None,
        });
        let why = unknown.or(special.undecidable).or(expanded);
        let args: Vec<String> = rest.iter().map(|a| a.text.clone()).collect();
        let (mut action, rule) = match self.rules.find(&program, &args) {
            Some((i, a)) => (a, Some(i)),
            // An unknown program matched no rule: what is known allows it, and it is flagged.
            None if first.basename().1.is_some() => (Action::Allow, None),
            None => (self.rules.default_action(), None),
        };
        if let Some(w) = &why {
            if self.rules.strict() {
                action = action.max(Action::StepUp);
            }
            self.note(w.clone());
        }
        let shown_program = if first.basename().1.is_some() {
            first.raw.clone()
        } else {
            crate::words::quote(&program)
        };
        let normalized = std::iter::once(shown_program)
            .chain(rest.iter().map(Resolved::display))
            .collect::<Vec<_>>()
            .join(" ");
        self.commands.push(CheckedCommand {
            normalized,
            program,
            args,
            action,
            rule,
            undecidable: why,
        });
        for t in special.then {
            match t {
                Then::Argv(a) => self.run(&a, stdin),
                Then::Line(s, what) => self.line_text(&s.text, &what),
            }
        }
    }

    /// Wrappers, shells and the builtins that run strings: what `program` runs in turn.
    fn special(&mut self, program: &str, args: &[Resolved], stdin: &Stdin) -> Special {
        let text = |i: usize| args.get(i).map_or("", |a| a.text.as_str());
        match program {
            "sudo" => {
                let i = skip_options(
                    args,
                    &[
                        "-u",
                        "-g",
                        "-C",
                        "-D",
                        "-h",
                        "-p",
                        "-r",
                        "-t",
                        "-U",
                        "-R",
                        "-T",
                        "--user",
                        "--group",
                        "--close-from",
                        "--chdir",
                        "--host",
                        "--prompt",
                        "--role",
                        "--type",
                        "--other-user",
                        "--chroot",
                        "--command-timeout",
                    ],
                );
                if args[..i]
                    .iter()
                    .any(|a| a.text == "-e" || a.text == "--edit")
                {
                    return Special::default();
                }
                Special::argv(&args[i..])
            }
            "doas" => Special::argv(&args[skip_options(args, &["-u", "-C", "-a"])..]),
            "pkexec" => Special::argv(&args[skip_options(args, &["--user"])..]),
            "env" => self.env(args),
            "command" => {
                let i = skip_options(args, &[]);
                if args[..i].iter().any(|a| {
                    a.text.starts_with('-') && (a.text.contains('v') || a.text.contains('V'))
                }) {
                    // `command -v rm` only says where rm is.
                    return Special::default();
                }
                Special::argv(&args[i..])
            }
            "exec" => Special::argv(&args[skip_options(args, &["-a"])..]),
            "builtin" | "nohup" | "setsid" => Special::argv(&args[skip_options(args, &[])..]),
            "nice" => Special::argv(&args[skip_options(args, &["-n", "--adjustment"])..]),
            "ionice" => Special::argv(
                &args[skip_options(
                    args,
                    &[
                        "-c",
                        "-n",
                        "-p",
                        "-P",
                        "-u",
                        "--class",
                        "--classdata",
                        "--pid",
                        "--pgid",
                        "--uid",
                    ],
                )..],
            ),
            "timeout" => {
                let i = skip_options(args, &["-s", "-k", "--signal", "--kill-after"]);
                Special::argv(args.get(i + 1..).unwrap_or_default())
            }
            "stdbuf" => Special::argv(
                &args[skip_options(args, &["-i", "-o", "-e", "--input", "--output", "--error"])..],
            ),
            "time" => {
                Special::argv(&args[skip_options(args, &["-f", "-o", "--format", "--output"])..])
            }
            "chroot" => {
                let i = skip_options(args, &["--userspec", "--groups"]);
                Special::argv(args.get(i + 1..).unwrap_or_default())
            }
            "xargs" => {
                let i = skip_options(
                    args,
                    &[
                        "-a",
                        "-d",
                        "-E",
                        "-I",
                        "-L",
                        "-n",
                        "-P",
                        "-s",
                        "--arg-file",
                        "--delimiter",
                        "--eof",
                        "--max-lines",
                        "--max-args",
                        "--max-procs",
                        "--max-chars",
                        "--process-slot-var",
                    ],
                );
                let mut s = Special::argv(&args[i..]);
                if i < args.len() {
                    s.undecidable = Some(format!(
                        "xargs adds arguments read from its input to {}",
                        text(i)
                    ));
                }
                s
            }
            "busybox" | "toybox" => {
                if text(0).starts_with('-') {
                    Special::default()
                } else {
                    Special::argv(args)
                }
            }
            "find" => {
                let mut s = Special::default();
                let mut i = 0;
                while i < args.len() {
                    if matches!(text(i), "-exec" | "-execdir" | "-ok" | "-okdir") {
                        let start = i + 1;
                        let mut end = start;
                        while end < args.len() && !matches!(text(end), ";" | "+") {
                            end += 1;
                        }
                        s.then.push(Then::Argv(args[start..end].to_vec()));
                        i = end;
                    }
                    i += 1;
                }
                s
            }
            "eval" => {
                let joined = join(args);
                if joined.text.trim().is_empty() {
                    return Special::default();
                }
                let mut s = Special::line(&joined, "eval's string".into());
                if !joined.is_literal() {
                    s.undecidable = Some(format!(
                        "eval of a non-literal string ({})",
                        joined.dynamic.join(", ")
                    ));
                }
                s
            }
            "source" | "." => Special::undecidable(format!(
                "{program} reads commands from the file {}",
                args.first().map_or_else(String::new, Resolved::display)
            )),
            "alias" => {
                let mut s = Special::default();
                for a in args {
                    if let Some((name, value)) = a.text.split_once('=') {
                        let mut v = a.clone();
                        v.text = value.to_owned();
                        s.then.push(Then::Line(v, format!("alias {name}")));
                    }
                }
                s
            }
            "trap" => {
                let i = skip_options(args, &[]);
                match args.get(i) {
                    Some(a) if args.len() > i + 1 && a.text != "-" => {
                        Special::line(a, "trap's command".into())
                    }
                    _ => Special::default(),
                }
            }
            "watch" => {
                let i = skip_options(args, &["-n", "--interval", "-q", "--equexit", "--errexit"]);
                let rest = join(&args[i..]);
                if rest.text.is_empty() {
                    Special::default()
                } else {
                    Special::line(&rest, "watch's command".into())
                }
            }
            "runuser"
                if args
                    .iter()
                    .any(|a| a.text == "-u" || a.text.starts_with("--user")) =>
            {
                // `runuser -u user [--] command…` runs the command directly.
                Special::argv(
                    &args[skip_options(
                        args,
                        &["-u", "-g", "-G", "--user", "--group", "--supp-group"],
                    )..],
                )
            }
            "su" | "runuser" => su_command(args).map_or_else(Special::default, |c| {
                Special::line(&c, format!("the string given to {program} -c"))
            }),
            _ if is_shell(program) => shell(program, args, stdin),
            _ if is_interpreter(program) => interpreter(program, args),
            _ => Special::default(),
        }
    }

    fn env(&mut self, args: &[Resolved]) -> Special {
        let mut split: Option<Resolved> = None;
        let mut i = 0;
        while i < args.len() {
            let a = args[i].text.as_str();
            if a == "--" {
                i += 1;
                break;
            }
            if a == "-" {
                i += 1;
                continue;
            }
            if let Some(long) = a.strip_prefix("--") {
                let (name, value) = long
                    .split_once('=')
                    .map_or((long, None), |(n, v)| (n, Some(v)));
                let takes = matches!(name, "unset" | "chdir" | "split-string");
                let v = match value {
                    Some(v) => Some(literal_part(&args[i], v)),
                    None if takes => {
                        i += 1;
                        args.get(i).cloned()
                    }
                    None => None,
                };
                if name == "split-string" {
                    split = v;
                }
                i += 1;
                continue;
            }
            if let Some(short) = a.strip_prefix('-') {
                for (k, c) in short.char_indices() {
                    if matches!(c, 'u' | 'C' | 'S') {
                        let attached = &short[k + c.len_utf8()..];
                        let v = if attached.is_empty() {
                            i += 1;
                            args.get(i).cloned()
                        } else {
                            Some(literal_part(&args[i.min(args.len() - 1)], attached))
                        };
                        if c == 'S' {
                            split = v;
                        }
                        break;
                    }
                }
                i += 1;
                continue;
            }
            if a.contains('=') {
                i += 1;
                continue;
            }
            break;
        }
        let rest = args.get(i..).unwrap_or_default();
        match split {
            Some(s) => {
                let mut all = vec![s];
                all.extend(rest.iter().map(|r| {
                    let mut q = r.clone();
                    if r.is_literal() {
                        q.text = crate::words::quote(&r.text);
                    }
                    q
                }));
                Special::line(&join(&all), "env -S's string".into())
            }
            None => Special::argv(rest),
        }
    }
}

/// More `{` than this in one word and it counts as a brace expansion without asking the parser:
/// brush-parser 0.4.0's brace-expression grammar backtracks exponentially on nested `{`
/// (50 bytes with 19 of them took over 25 s; found by the fuzz target `shell_command`, kept in
/// fuzz/regressions/), and this check runs on every Enter. A brace expansion is undecidable as
/// a program name anyway, so the shortcut only ever refuses more.
const MAX_BRACES: usize = 8;

fn has_brace_expansion(raw: &str, opts: &ParserOptions) -> bool {
    use brush_parser::word::BraceExpressionOrText;
    // brush-parser 0.4.0 also unwraps a sequence bound (`{1..N}`) as an i64: a longer number
    // panicked (fuzz/regressions/shell_command/), so such a word is a brace expansion unasked.
    let overflows = raw
        .split(|c: char| !c.is_ascii_digit())
        .any(|n| !n.is_empty() && n.parse::<i64>().is_err());
    if overflows || raw.matches('{').count() > MAX_BRACES {
        return true;
    }
    matches!(
        brush_parser::word::parse_brace_expansions(raw, opts),
        Ok(Some(v)) if v.iter().any(|p| matches!(p, BraceExpressionOrText::Expr(_)))
    )
}

/// The strings inside `${…}` that are expanded in turn (`${x:-$(rm y)}`).
fn parameter_strings(e: &ParameterExpr) -> Vec<&str> {
    match e {
        ParameterExpr::UseDefaultValues {
            default_value: s, ..
        }
        | ParameterExpr::AssignDefaultValues {
            default_value: s, ..
        }
        | ParameterExpr::IndicateErrorIfNullOrUnset {
            error_message: s, ..
        }
        | ParameterExpr::UseAlternativeValue {
            alternative_value: s,
            ..
        }
        | ParameterExpr::RemoveSmallestSuffixPattern { pattern: s, .. }
        | ParameterExpr::RemoveLargestSuffixPattern { pattern: s, .. }
        | ParameterExpr::RemoveSmallestPrefixPattern { pattern: s, .. }
        | ParameterExpr::RemoveLargestPrefixPattern { pattern: s, .. }
        | ParameterExpr::UppercaseFirstChar { pattern: s, .. }
        | ParameterExpr::UppercasePattern { pattern: s, .. }
        | ParameterExpr::LowercaseFirstChar { pattern: s, .. }
        | ParameterExpr::LowercasePattern { pattern: s, .. } => s.as_deref().into_iter().collect(),
        ParameterExpr::ReplaceSubstring {
            pattern,
            replacement,
            ..
        } => std::iter::once(pattern.as_str())
            .chain(replacement.as_deref())
            .collect(),
        ParameterExpr::Substring { offset, length, .. } => std::iter::once(offset.value.as_str())
            .chain(length.as_ref().map(|l| l.value.as_str()))
            .collect(),
        _ => vec![],
    }
}

/// A piece of a word's literal text (an option's attached value), keeping the word's
/// expansions so that `-S"$x"` stays non-literal.
fn literal_part(whole: &Resolved, part: &str) -> Resolved {
    let mut r = whole.clone();
    r.text = part.to_owned();
    r
}

/// Words joined by spaces, as `eval` and `watch` join their arguments before parsing them.
fn join(words: &[Resolved]) -> Resolved {
    let mut r = Resolved::default();
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            r.text.push(' ');
            r.raw.push(' ');
        }
        r.text.push_str(&w.text);
        r.raw.push_str(&w.raw);
        r.dynamic.extend(w.dynamic.iter().cloned());
    }
    r
}

/// The index of the first operand after the options; options in `with_value` take the next
/// word (or the rest of their cluster, `-uroot`) as their value.
fn skip_options(args: &[Resolved], with_value: &[&str]) -> usize {
    let mut i = 0;
    while i < args.len() {
        let a = args[i].text.as_str();
        if a == "--" {
            return i + 1;
        }
        if !a.starts_with('-') || a == "-" {
            return i;
        }
        if a.starts_with("--") {
            let takes = !a.contains('=') && with_value.contains(&a);
            i += if takes { 2 } else { 1 };
            continue;
        }
        let cluster: Vec<char> = a.chars().skip(1).collect();
        let mut takes_next = false;
        for (k, c) in cluster.iter().enumerate() {
            if with_value.iter().any(|o| o.len() == 2 && o.ends_with(*c)) {
                takes_next = k + 1 == cluster.len();
                break;
            }
        }
        i += if takes_next { 2 } else { 1 };
    }
    i.min(args.len())
}

fn is_shell(p: &str) -> bool {
    matches!(
        p,
        "sh" | "bash"
            | "dash"
            | "zsh"
            | "ksh"
            | "mksh"
            | "ash"
            | "rbash"
            | "yash"
            | "posh"
            | "ksh93"
            | "pdksh"
            | "oksh"
    )
}

fn is_interpreter(p: &str) -> bool {
    let stem = p.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    matches!(
        stem,
        "python" | "perl" | "ruby" | "node" | "nodejs" | "php" | "lua" | "luajit"
    )
}

/// A shell runs its `-c` string, a script file, or what it reads on standard input.
fn shell(program: &str, args: &[Resolved], stdin: &Stdin) -> Special {
    let mut has_c = false;
    let mut reads_stdin = false;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].text.as_str();
        if a == "--" || a == "-" {
            i += 1;
            break;
        }
        if a.starts_with("--") {
            i += if matches!(a, "--rcfile" | "--init-file") {
                2
            } else {
                1
            };
            continue;
        }
        if (a.starts_with('-') || a.starts_with('+')) && a.len() > 1 {
            let cluster: Vec<char> = a.chars().skip(1).collect();
            let mut skip_value = false;
            for (k, c) in cluster.iter().enumerate() {
                match c {
                    'c' => has_c = true,
                    's' => reads_stdin = true,
                    'o' | 'O' if k + 1 == cluster.len() => skip_value = true,
                    _ => {}
                }
            }
            i += if skip_value { 2 } else { 1 };
            continue;
        }
        break;
    }
    let operand = args.get(i);
    if has_c {
        return operand.map_or_else(Special::default, |c| {
            Special::line(c, format!("the string given to {program} -c"))
        });
    }
    if let (Some(file), false) = (operand, reads_stdin) {
        return Special::undecidable(format!("{program} runs the script file {}", file.display()));
    }
    match stdin {
        Stdin::Text(t) => Special::line(t, format!("the here-document given to {program}")),
        Stdin::Inherited | Stdin::Pipe | Stdin::File => {
            Special::undecidable(format!("{program} reads commands from its standard input"))
        }
    }
}

/// Another language's code cannot be matched against shell command rules.
fn interpreter(program: &str, args: &[Resolved]) -> Special {
    if !args.is_empty()
        && args
            .iter()
            .all(|a| matches!(a.text.as_str(), "--version" | "-V" | "--help" | "-h"))
    {
        return Special::default();
    }
    let inline = args.iter().any(|a| {
        let t = a.text.as_str();
        t.starts_with('-')
            && !t.starts_with("--")
            && (t.contains('c') || t.contains('e') || t.contains('r') || t.contains('E'))
            || t == "--eval"
    });
    let why = if inline {
        format!("{program} runs code given on its command line")
    } else if let Some(f) = args.iter().find(|a| !a.text.starts_with('-')) {
        format!("{program} runs the script file {}", f.display())
    } else {
        format!("{program} reads a program from its standard input")
    };
    Special::undecidable(why)
}

/// `su -c CMD`, `su --command=CMD`, `runuser -l user -c CMD`.
fn su_command(args: &[Resolved]) -> Option<Resolved> {
    let mut i = 0;
    while i < args.len() {
        let a = args[i].text.as_str();
        if a == "--" {
            return None;
        }
        if let Some(v) = a.strip_prefix("--command=") {
            return Some(literal_part(&args[i], v));
        }
        if a == "--command" {
            return args.get(i + 1).cloned();
        }
        if a.starts_with("--") {
            i += if matches!(
                a,
                "--shell" | "--group" | "--supp-group" | "--whitelist-environment"
            ) {
                2
            } else {
                1
            };
            continue;
        }
        if let Some(short) = a.strip_prefix('-') {
            for (k, c) in short.char_indices() {
                let attached = &short[k + c.len_utf8()..];
                match c {
                    'c' if attached.is_empty() => return args.get(i + 1).cloned(),
                    'c' => return Some(literal_part(&args[i], attached)),
                    's' | 'g' | 'G' | 'w' => {
                        if attached.is_empty() {
                            i += 1;
                        }
                        break;
                    }
                    _ => {}
                }
            }
        }
        i += 1;
    }
    None
}
