//! Lower layers never import upper ones: no module of `compose`, `dsp` or
//! `degrade` refers (through a `crate::` or `super::` path, in a `use` or in
//! code) to the renderer, the pre-renderer, the engine, the shared-memory stream,
//! the offline renderer or the plugin wrapper. State machines and composers take
//! plain numbers and their own types, so they stay testable on their own.

use std::fs;
use std::path::{Path, PathBuf};

/// The lower layers, as folders of `src/`.
const LOWER: [&str; 3] = ["compose", "dsp", "degrade"];
/// What the lower layers must not reach: the upper modules, and the plugin
/// wrapper (`params`, `host_sync` and the items of `lib.rs`).
const UPPER: [&str; 10] = [
    "render",
    "prerender",
    "engine",
    "stream",
    "offline",
    "params",
    "host_sync",
    "plugin",
    "clap_entry",
    "Auralis",
];

/// The leading identifier of `s`.
fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The top-level names of the crate a path reaches, given what follows its
/// root (`crate::` or enough `super::`): one name, or one per item of a group.
fn heads(rest: &str) -> Vec<String> {
    let Some(group) = rest.strip_prefix('{') else {
        return vec![ident(rest).to_owned()];
    };
    let mut names = Vec::new();
    let (mut depth, mut at_item) = (0usize, true);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => at_item = true,
            c if at_item && (c.is_alphanumeric() || c == '_') => {
                names.push(ident(&group[i..]).to_owned());
                at_item = false;
            }
            _ => {}
        }
    }
    names
}

/// The crate's top-level names that `source` refers to, for a file `depth`
/// modules below the crate root (`compose/mod.rs` is 1, `compose/chords.rs` 2).
/// Comments are skipped.
fn top_level_refs(source: &str, depth: usize) -> Vec<String> {
    let code: String = source
        .lines()
        .map(|l| l.find("//").map_or(l, |i| &l[..i]))
        .collect::<Vec<_>>()
        .join("\n");
    let mut refs = Vec::new();
    let bytes = code.as_bytes();
    for (i, _) in code.match_indices("crate::") {
        let glued = i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if !glued {
            refs.extend(heads(&code[i + "crate::".len()..]));
        }
    }
    let supers = "super::".repeat(depth);
    for (i, _) in code.match_indices(&supers) {
        let glued = i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b':');
        let rest = &code[i + supers.len()..];
        if !glued && !rest.starts_with("super::") {
            refs.extend(heads(rest));
        }
    }
    refs
}

/// The references of `source` that break the layering.
fn violations(source: &str, depth: usize) -> Vec<String> {
    top_level_refs(source, depth)
        .into_iter()
        .filter(|name| UPPER.contains(&name.as_str()))
        .collect()
}

/// Every `.rs` file below `dir` (a folder `depth` modules below the crate root),
/// with its own depth.
fn sources(dir: &Path, depth: usize, out: &mut Vec<(PathBuf, usize)>) {
    for entry in fs::read_dir(dir).expect("readable source folder") {
        let path = entry.expect("folder entry").path();
        if path.is_dir() {
            sources(&path, depth + 1, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let is_mod = path.file_name().is_some_and(|n| n == "mod.rs");
            out.push((path, if is_mod { depth } else { depth + 1 }));
        }
    }
}

#[test]
fn lower_layers_import_nothing_from_upper_ones() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for layer in LOWER {
        sources(&src.join(layer), 1, &mut files);
    }
    assert!(files.len() > 10, "found only {files:?}");
    let broken: Vec<String> = files
        .iter()
        .flat_map(|(path, depth)| {
            let source = fs::read_to_string(path).expect("readable source file");
            violations(&source, *depth)
                .into_iter()
                .map(move |name| format!("{} uses {name}", path.display()))
        })
        .collect();
    assert!(broken.is_empty(), "layering broken:\n{}", broken.join("\n"));
}

#[test]
fn the_checker_sees_every_kind_of_path() {
    assert_eq!(
        violations("use crate::render::texture::Telemetry;", 2),
        ["render"]
    );
    assert_eq!(
        violations("use crate::{compose::Phrase, stream::control};", 2),
        ["stream"]
    );
    assert_eq!(
        violations(
            "use crate::{\n    engine::{Engine, EngineConfig},\n    rng::Rng,\n};",
            1
        ),
        ["engine"]
    );
    assert_eq!(
        violations("let s = crate::prerender::Quality::FULL;", 2),
        ["prerender"]
    );
    // From `degrade/mod.rs` one `super::` is the crate root; from a file inside
    // `degrade/` it takes two.
    assert_eq!(
        violations("use super::params::AuralisParams;", 1),
        ["params"]
    );
    assert_eq!(
        violations("use super::super::host_sync::HostSync;", 2),
        ["host_sync"]
    );
    assert!(violations("use super::params::ParamUpdate;", 2).is_empty());
    // Allowed neighbours, comments and look-alikes pass.
    assert!(violations(
        "use crate::compose::phrase::Phrase;\nuse crate::rng::Rng;",
        2
    )
    .is_empty());
    assert!(violations("// see crate::render::Renderer", 2).is_empty());
    assert!(violations("use mycrate::render::X;", 2).is_empty());
}
