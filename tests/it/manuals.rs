//! The manuals against the program and the fragment (issue 14): mandoc's
//! lint, binarydist(8) against every subcommand's --help, binarydists(7)
//! against the fragment's knobs and targets. Moved from workflow.rs; the
//! tests keep their names, so `cargo test workflow` still runs them.

use crate::bsd::repo;
use crate::util::{bin, ok};
use crate::workflow::read;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

#[test]
fn workflow_manuals_are_clean_under_mandoc_lint() {
    let out = Command::new("mandoc")
        .args(["-T", "lint", "-W", "warning"])
        .arg(repo().join("man/binarydist.8"))
        .arg(repo().join("man/binarydists.7"))
        .output()
        .expect("mandoc (make test-deps installs it)");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "mandoc -T lint -W warning:\n{said}");
}

/// Every (sub)command `binarydist --help` lists, as paths ("update",
/// "keys rotate"), with the long and short options its own --help prints
/// (not -h/--help, -V/--version) and the environment variables it reads.
fn commands() -> BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> {
    fn help(path: &[&str]) -> String {
        String::from_utf8(ok(bin().args(path).arg("--help")).stdout).unwrap()
    }
    fn subcommands(text: &str) -> Vec<String> {
        let Some(rest) = text.split("\nCommands:\n").nth(1) else { return vec![] };
        rest.lines()
            .take_while(|l| l.starts_with("  "))
            .filter_map(|l| l.split_whitespace().next())
            .filter(|c| *c != "help")
            .map(String::from)
            .collect()
    }
    fn walk(path: Vec<String>, out: &mut BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)>) {
        let args: Vec<&str> = path.iter().map(String::as_str).collect();
        let text = help(&args);
        let subs = subcommands(&text);
        if !subs.is_empty() {
            for s in subs {
                let mut p = path.clone();
                p.push(s);
                walk(p, out);
            }
            return;
        }
        let mut opts = BTreeSet::new();
        let mut env = BTreeSet::new();
        for l in text.lines() {
            let l = l.trim_start();
            if l.starts_with('-') {
                for w in l.split(|c: char| c.is_whitespace() || c == ',').take_while(|w| w.is_empty() || w.starts_with('-')) {
                    if !w.is_empty() && !["-h", "--help", "-V", "--version"].contains(&w) {
                        opts.insert(w.to_string());
                    }
                }
            }
            for part in l.split("[env: ").skip(1) {
                env.insert(part.split('=').next().unwrap().to_string());
            }
        }
        out.insert(path.join(" "), (opts, env));
    }
    let mut out = BTreeMap::new();
    walk(vec![], &mut out);
    out
}

/// The mdoc source in blocks: `.Sh`/`.Ss` title -> lines.
fn sections(page: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = vec![(String::new(), vec![])];
    for l in page.lines() {
        if let Some(t) = l.strip_prefix(".Sh ").or_else(|| l.strip_prefix(".Ss ")) {
            out.push((t.trim().to_string(), vec![]));
        } else {
            out.last_mut().unwrap().1.push(l.to_string());
        }
    }
    out
}

/// The options a block lists as `.It Fl ...` items (`Fl -root` is --root).
fn listed_options(lines: &[String]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for l in lines.iter().filter(|l| l.starts_with(".It ")) {
        let words: Vec<&str> = l.split_whitespace().collect();
        for w in words.windows(2).filter(|w| w[0] == "Fl") {
            out.insert(format!("-{}", w[1]));
        }
    }
    out
}

#[test]
fn workflow_binarydist_8_documents_every_subcommand_option_and_variable_that_help_prints() {
    let page = read(&repo().join("man/binarydist.8"));
    let blocks = sections(&page);
    let block = |name: &str| blocks.iter().find(|(t, _)| t == name).map(|(_, l)| l.clone());
    let synopsis = block("SYNOPSIS").unwrap().join("\n");
    let environment = listed_env(&block("ENVIRONMENT").unwrap());
    let cmds = commands();
    assert!(cmds.contains_key("update") && cmds.contains_key("keys rotate"), "{:?}", cmds.keys());
    let mut problems = Vec::new();
    for (name, (opts, env)) in &cmds {
        let Some(lines) = block(name) else {
            problems.push(format!("no `.Ss {name}` subsection"));
            continue;
        };
        if !synopsis.contains(&format!(".Cm {name}\n")) {
            problems.push(format!("{name} is not in the SYNOPSIS"));
        }
        // Its own items, and those of the subsections it names with Sx.
        let own = listed_options(&lines);
        let mut documented = own.clone();
        for l in lines.iter().filter(|l| l.starts_with(".Sx ")) {
            let cited = l[4..].split_whitespace().next().unwrap_or("");
            documented.extend(block(cited).map(|b| listed_options(&b)).unwrap_or_default());
        }
        for o in opts.difference(&documented) {
            problems.push(format!("{name}: {o} is in --help, not in the manual"));
        }
        for o in own.difference(opts) {
            problems.push(format!("{name}: the manual lists {o}, --help does not"));
        }
        for e in env.difference(&environment) {
            problems.push(format!("{name}: reads {e}, which ENVIRONMENT does not list"));
        }
    }
    for (title, _) in blocks.iter().filter(|(t, _)| t.chars().next().is_some_and(|c| c.is_ascii_lowercase())) {
        if !cmds.contains_key(title) {
            problems.push(format!("`.Ss {title}` names no subcommand of binarydist"));
        }
    }
    assert!(problems.is_empty(), "binarydist(8) and --help disagree:\n{}", problems.join("\n"));
    // The exit codes are the table of docs/update.md and of --help.
    let exit = block("EXIT STATUS").unwrap().join("\n");
    let help = String::from_utf8(ok(bin().arg("--help")).stdout).unwrap();
    for code in ["0", "1", "2", "3"] {
        assert!(exit.contains(&format!(".It {code}\n")) && help.contains(&format!("{code} ")), "exit code {code}");
    }
}

fn listed_env(lines: &[String]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for l in lines.iter().filter(|l| l.starts_with(".It ")) {
        let words: Vec<&str> = l.split_whitespace().collect();
        for w in words.windows(2).filter(|w| w[0] == "Ev") {
            out.insert(w[1].to_string());
        }
    }
    out
}

#[test]
fn workflow_binarydists_7_documents_every_knob_and_target_of_the_fragment() {
    let page = read(&repo().join("man/binarydists.7"));
    let blocks = sections(&page);
    let items = |section: &str, mac: &str| -> BTreeSet<String> {
        let lines = &blocks.iter().find(|(t, _)| t == section).unwrap().1;
        let mut out = BTreeSet::new();
        for l in lines.iter().filter(|l| l.starts_with(".It ")) {
            let words: Vec<&str> = l.split_whitespace().collect();
            for w in words.windows(2).filter(|w| w[0] == mac) {
                out.insert(w[1].trim_end_matches("\\&").to_string());
            }
        }
        out
    };
    // The fragment and the file it includes.
    let frag = read(&repo().join("binarydists/Makefile")) + &read(&repo().join("binarydists/Makefile.install"));
    // Knobs: every `NAME?=`, and every variable the fragment only tests for
    // with `defined(NAME)`.
    let mut knobs = BTreeSet::new();
    for l in frag.lines() {
        if let Some((name, _)) = l.split_once("?=") {
            if !name.starts_with('_') && !name.contains(' ') && !name.contains('$') {
                knobs.insert(name.to_string());
            }
        }
        for part in l.split("defined(").skip(1) {
            let name = part.split(')').next().unwrap();
            if !name.starts_with('_') && !name.contains('$') {
                knobs.insert(name.to_string());
            }
        }
    }
    // Read without a default: the lists (set in a .for), the target's root
    // and what check asks Makefile.inc1 for.
    knobs.extend(["UPGRADE_LIST", "CRITICAL_LIST", "DESTDIR", "WORLDDEST", "KRNLOBJDIR"].map(String::from));
    let vars = items("VARIABLES", "Va");
    let missing: Vec<&String> = knobs.difference(&vars).collect();
    let unknown: Vec<&String> = vars.difference(&knobs).collect();
    assert!(missing.is_empty() && unknown.is_empty(), "binarydists(7): undocumented {missing:?}, not in the fragment {unknown:?}");

    // Targets: every name in the fragment's .PHONY lists.
    let mut phony = BTreeSet::new();
    let mut in_phony = false;
    for l in frag.lines() {
        let rest = match l.strip_prefix(".PHONY:") {
            Some(r) => r,
            None if in_phony => l,
            None => continue,
        };
        in_phony = rest.trim_end().ends_with('\\');
        phony.extend(rest.split_whitespace().filter(|w| *w != "\\" && !w.contains('$')).map(String::from));
    }
    let targets = items("TARGETS", "Cm");
    let undocumented: Vec<&String> = phony.difference(&targets).collect();
    assert!(phony.len() > 15 && undocumented.is_empty(), "binarydists(7) lacks targets {undocumented:?}");
}
