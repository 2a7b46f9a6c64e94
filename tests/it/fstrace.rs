//! The log of `strace -f -y -xx -qq`: one line per call (`PID name(args) =
//! ret`), an unfinished call joined to its `<... name resumed>` line, every
//! string and every descriptor's path (`3<...>`, `AT_FDCWD<...>`) in hex, so
//! that nothing a file name holds can make a line ambiguous. A line it cannot
//! read is a failure, never skipped.

use std::collections::HashMap;

/// One value of a call's arguments as strace prints them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Val {
    /// A string, and whether strace cut it short (`"..."...`).
    Str(Vec<u8>, bool),
    /// A number, flags, NULL, AT_FDCWD...: the word, and the path -y put after it.
    Word(String, Option<Vec<u8>>),
    List(Vec<Val>),
    /// `{key=value, ...}` (a value without a key has an empty one).
    Struct(Vec<(String, Val)>),
}

impl Val {
    pub fn word(&self) -> &str {
        match self {
            Val::Word(w, _) => w,
            _ => "",
        }
    }

    pub fn path(&self) -> Option<&[u8]> {
        match self {
            Val::Word(_, p) => p.as_deref(),
            _ => None,
        }
    }

    pub fn int(&self) -> Option<i64> {
        let w = self.word();
        if let Some(h) = w.strip_prefix("0x") {
            return i64::from_str_radix(h, 16).ok();
        }
        if w.len() > 1 && w.starts_with('0') {
            return i64::from_str_radix(&w[1..], 8).ok();
        }
        w.parse().ok()
    }

    pub fn has_flag(&self, flag: &str) -> bool {
        self.word().split('|').any(|f| f == flag)
    }

    pub fn field(&self, key: &str) -> Option<&Val> {
        match self {
            Val::Struct(f) => f.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// One finished call: who made it, on which line it started, its name,
/// arguments and return value (with the path -y gave a returned descriptor).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub tid: u64,
    pub entry: usize,
    /// The line it finished on.
    pub end: usize,
    pub name: String,
    pub args: Vec<Val>,
    pub ret: Option<i64>,
    pub ret_path: Option<Vec<u8>>,
}

struct P<'a> {
    s: &'a [u8],
    i: usize,
}

impl P<'_> {
    fn peek(&self) -> u8 {
        self.s.get(self.i).copied().unwrap_or(0)
    }

    fn eat(&mut self, t: &str) -> bool {
        if self.s[self.i..].starts_with(t.as_bytes()) {
            self.i += t.len();
            true
        } else {
            false
        }
    }

    fn skip(&mut self) {
        loop {
            while self.peek() == b' ' {
                self.i += 1;
            }
            if self.eat("/*") {
                while self.i < self.s.len() && !self.eat("*/") {
                    self.i += 1;
                }
            } else {
                return;
            }
        }
    }

    fn string(&mut self) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        self.i += 1;
        loop {
            match self.peek() {
                0 => return Err("a string without its end".into()),
                b'"' => {
                    self.i += 1;
                    return Ok(out);
                }
                b'\\' => {
                    let c = self.s.get(self.i + 1).copied().unwrap_or(0);
                    self.i += 2;
                    match c {
                        b'x' => {
                            let h = std::str::from_utf8(self.s.get(self.i..self.i + 2).unwrap_or_default()).unwrap_or("");
                            out.push(u8::from_str_radix(h, 16).map_err(|_| "a bad \\x escape")?);
                            self.i += 2;
                        }
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'v' => out.push(0x0b),
                        b'f' => out.push(0x0c),
                        b'0'..=b'7' => {
                            let mut v = (c - b'0') as u32;
                            while (b'0'..=b'7').contains(&self.peek()) && v < 0o40 {
                                v = v * 8 + (self.peek() - b'0') as u32;
                                self.i += 1;
                            }
                            out.push(v as u8);
                        }
                        c => out.push(c),
                    }
                }
                c => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }

    /// The path strace -y put after a word (`<...>`), hex-escaped under -xx.
    fn annotation(&mut self) -> Result<Option<Vec<u8>>, String> {
        if self.peek() != b'<' {
            return Ok(None);
        }
        self.i += 1;
        let start = self.i;
        while self.peek() != b'>' {
            if self.peek() == 0 {
                return Err("a descriptor's path without its end".into());
            }
            self.i += 1;
        }
        let raw = &self.s[start..self.i];
        self.i += 1;
        let mut out = Vec::new();
        let mut k = 0;
        while k < raw.len() {
            let hexed = raw.get(k..k + 4).filter(|e| e.starts_with(b"\\x")).and_then(|e| std::str::from_utf8(&e[2..]).ok());
            match hexed.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(byte) => {
                    out.push(byte);
                    k += 4;
                }
                None => {
                    out.push(raw[k]);
                    k += 1;
                }
            }
        }
        Ok(Some(out))
    }

    fn value(&mut self) -> Result<Val, String> {
        self.skip();
        let v = match self.peek() {
            b'"' => {
                let s = self.string()?;
                Val::Str(s, self.eat("..."))
            }
            b'[' => {
                self.i += 1;
                Val::List(self.items(b']')?.into_iter().map(|(_, v)| v).collect())
            }
            b'{' => {
                self.i += 1;
                Val::Struct(self.items(b'}')?)
            }
            _ => {
                let start = self.i;
                while !matches!(self.peek(), 0 | b',' | b')' | b']' | b'}' | b'<' | b' ' | b'=') {
                    self.i += 1;
                }
                let w = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                let mut path = self.annotation()?;
                if let (Some(p), true) = (&mut path, self.eat("(deleted)")) {
                    p.extend_from_slice(b" (deleted)");
                }
                Val::Word(w, path)
            }
        };
        self.skip();
        // An in/out argument: what the call wrote back is added to what it
        // was given (clone3's flags stay beside the tid it wrote back).
        if self.eat("=> ") {
            return Ok(match (v, self.value()?) {
                (Val::Struct(mut given), Val::Struct(back)) => {
                    given.extend(back);
                    Val::Struct(given)
                }
                (_, back) => back,
            });
        }
        Ok(v)
    }

    fn items(&mut self, close: u8) -> Result<Vec<(String, Val)>, String> {
        let mut out = Vec::new();
        loop {
            self.skip();
            if self.peek() == close {
                self.i += 1;
                return Ok(out);
            }
            let v = self.value()?;
            let item = if self.peek() == b'=' && !self.s[self.i..].starts_with(b"=>") {
                self.i += 1;
                (v.word().to_string(), self.value()?)
            } else {
                (String::new(), v)
            };
            out.push(item);
            self.skip();
            if !self.eat(",") && self.peek() != close {
                return Err(format!("unexpected {:?} in a list", self.peek() as char));
            }
        }
    }
}

/// Parses one whole call, `name(args) = ret`.
fn parse_call(tid: u64, entry: usize, end: usize, text: &str) -> Result<Call, String> {
    let open = text.find('(').ok_or("no (")?;
    let name = text[..open].to_string();
    let mut p = P { s: text.as_bytes(), i: open + 1 };
    let args = p.items(b')')?.into_iter().map(|(k, v)| if k.is_empty() { v } else { Val::Struct(vec![(k, v)]) }).collect();
    p.skip();
    if !p.eat("= ") {
        return Err("no return value".into());
    }
    let (ret, ret_path) = if p.peek() == b'?' {
        (None, None)
    } else {
        match p.value()? {
            v @ Val::Word(..) => (v.int(), v.path().map(<[u8]>::to_vec)),
            _ => return Err("a return value that is not a number".into()),
        }
    };
    Ok(Call { tid, entry, end, name, args, ret, ret_path })
}

/// The calls of a log in the order they finished, an unfinished call joined
/// to its `<... resumed>` line; `entry` is the line it started on.
pub fn parse_log(text: &str) -> Vec<Call> {
    let mut pending: HashMap<u64, (usize, String)> = HashMap::new();
    let mut calls = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let fail = |why: &str| -> ! { panic!("strace log line {}: {why}: {line}", n + 1) };
        let (tid, rest) = line.split_once(' ').unwrap_or_else(|| fail("no pid"));
        let tid: u64 = tid.parse().unwrap_or_else(|_| fail("no pid"));
        let rest = rest.trim_start();
        if rest.starts_with("+++") || rest.starts_with("---") {
            continue;
        }
        if let Some(start) = rest.strip_suffix(" <unfinished ...>") {
            pending.insert(tid, (n + 1, start.to_string()));
            continue;
        }
        let (entry, whole) = if let Some(after) = rest.strip_prefix("<... ") {
            let (_, tail) = after.split_once(" resumed>").unwrap_or_else(|| fail("a resumed line without its call"));
            let (entry, start) = pending.remove(&tid).unwrap_or_else(|| fail("resumed but never started"));
            (entry, format!("{start}{tail}"))
        } else {
            (n + 1, rest.to_string())
        };
        calls.push(parse_call(tid, entry, n + 1, &whole).unwrap_or_else(|e| fail(&e)));
    }
    assert!(pending.is_empty() || pending.values().all(|(_, s)| s.starts_with("exit")), "calls never finished: {pending:?}");
    calls
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &[u8]) -> String {
        s.iter().map(|b| format!("\\x{b:02x}")).collect()
    }

    #[test]
    fn the_parser_joins_resumed_calls_and_decodes_paths_strings_and_times() {
        let p = hex(b"/t/a");
        let log = format!(
            "10 write(3<{p}>, \"{}\", 2 <unfinished ...>\n\
             11 fsync(4<{p}>) = 0\n\
             10 <... write resumed>) = 2\n\
             10 utimensat(3<{p}>, NULL, [{{tv_sec=1700000000, tv_nsec=0}} /* 2023 */, {{tv_sec=5, tv_nsec=UTIME_OMIT}}], 0) = 0\n\
             10 writev(3<{p}>, [{{iov_base=\"{}\", iov_len=1}}, {{iov_base=\"{}\", iov_len=1}}], 2) = 2\n\
             10 openat(AT_FDCWD<{p}>, \"{}\", O_WRONLY|O_CREAT, 0644) = 5<{p}>\n\
             10 clone3({{flags=CLONE_VM|CLONE_FILES, exit_signal=0}} => {{parent_tid=[12]}}, 88) = 12\n\
             10 unlinkat(3<{p}>, \"{}\", 0) = -1 ENOENT (No such file or directory)\n\
             10 +++ exited with 0 +++\n",
            hex(b"hi"),
            hex(b"a"),
            hex(b"b"),
            hex(b"x"),
            hex(b"gone")
        );
        let calls = parse_log(&log);
        assert_eq!(calls.len(), 7);
        assert_eq!((calls[0].name.as_str(), calls[0].entry), ("fsync", 2));
        assert_eq!((calls[1].name.as_str(), calls[1].entry, calls[1].ret), ("write", 1, Some(2)));
        assert_eq!(calls[1].args[0], Val::Word("3".into(), Some(b"/t/a".to_vec())));
        assert_eq!(calls[1].args[1], Val::Str(b"hi".to_vec(), false));
        let t = &calls[2].args[2];
        let Val::List(t) = t else { panic!("{t:?}") };
        assert_eq!(t[0].field("tv_sec").and_then(Val::int), Some(1700000000));
        assert_eq!(t[1].field("tv_nsec").map(Val::word), Some("UTIME_OMIT"));
        let Val::List(iov) = &calls[3].args[1] else { panic!() };
        assert_eq!(iov[1].field("iov_base"), Some(&Val::Str(b"b".to_vec(), false)));
        assert_eq!(calls[4].ret_path.as_deref(), Some(&b"/t/a"[..]));
        assert!(calls[4].args[2].has_flag("O_CREAT") && calls[4].args[3].int() == Some(0o644));
        assert_eq!(calls[5].ret, Some(12));
        assert_eq!(calls[6].ret, Some(-1));
    }
}
