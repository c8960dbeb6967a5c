//! Guard rails of the repository, checked by every `make test` (no root needed):
//!
//! 1. `bgp` stays sans-I/O: tokio is neither declared in `bgp/Cargo.toml`, nor in its
//!    resolved normal dependency graph (`cargo tree -p bgp -e normal`), nor used in
//!    `bgp/src`.
//! 2. ARCHITECTURE.md's codemap and the code agree, by the convention below.
//! 3. No markdown file of the repository points outside it.
//!
//! # How ARCHITECTURE.md names modules (what check 2 reads)
//!
//! - The codemap is the `## Codemap` section. Each `### ` heading in it starts with the
//!   backticked directory it describes, relative to the repository root:
//!   ``### `bgp/speaker/` — the speaker's I/O side``. A directory with a `Cargo.toml` is a
//!   *crate section*; any other (`topologies/`) only has to exist.
//! - In a crate section, every backticked path ending in `.rs` or `/` (`topology.rs`,
//!   `fsm/`, `bin/contiv-bgpd.rs`, `src/cluster.rs`) names a file or directory that must
//!   exist. It is looked up, in order: inside the directory of the list item it appears in
//!   (an item that starts with a backticked directory, ``- `driver/` — ...``, with its
//!   indented continuation lines), then in the crate's `src/`, then in the crate's root,
//!   then in the repository's root.
//! - Every `pub mod` of a crate's `src/lib.rs` is named in its section, as `name.rs`,
//!   `name/` or `name/mod.rs` (found under `src/`). Submodules further down are the
//!   module's own business and need not be listed.
//! - Every workspace member (`members` in the root `Cargo.toml`) has a section.
//! - Elsewhere in the file, a backticked path whose first component is a top-level entry of
//!   the repository (`tests/src/lib.rs`, `scripts/fuzz.sh`, `bgp/benches/`) must exist.
//!   Paths with `*`, `<...>` or `{...}` are patterns and are not checked.
//!
//! # What check 3 refuses in `*.md` files (outside `target/` and hidden directories)
//!
//! - a link (`[text](path)`, `[id]: path`, `href=`/`src=`) to a relative path that leaves
//!   the repository or does not exist, or to an absolute path;
//! - any `../` path that leaves the repository, `../shared` or `shared/reference/` (the
//!   steering area is not part of a clone), and absolute paths to this machine (`/work/`,
//!   `file://`).
//!
//! Every failure says which file and line, and what to change.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

/// The repository's root.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repository")
        .to_path_buf()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn fail_with(what: &str, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{what}: {} problem(s):\n- {}",
        problems.len(),
        problems.join("\n- ")
    );
}

// ---------------------------------------------------------------------------------------
// 1. bgp has no tokio
// ---------------------------------------------------------------------------------------

/// Dependency names declared in any dependency table of a Cargo.toml (`[dependencies]`,
/// `[build-dependencies]`, `[target.'..'.dependencies]`, `[dependencies.x]`), not
/// dev-dependencies.
fn declared_dependencies(manifest: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut in_deps = false;
    for line in manifest.lines() {
        let l = line.trim();
        if let Some(header) = l.strip_prefix('[') {
            let header = header.trim_end_matches(']').trim_matches('[').trim();
            let last = header.rsplit('.').next().unwrap_or("");
            // `[dependencies.tokio]` names the dependency in its header.
            if let Some(dep) = header
                .strip_prefix("dependencies.")
                .or_else(|| header.strip_prefix("build-dependencies."))
            {
                out.insert(dep.trim_matches('"').to_string());
                in_deps = false;
                continue;
            }
            in_deps = matches!(last, "dependencies" | "build-dependencies");
            continue;
        }
        if in_deps && let Some((name, _)) = l.split_once('=') {
            let name = name.trim().trim_matches('"');
            if !name.is_empty() && !name.starts_with('#') {
                // `tokio.workspace = true` declares `tokio`.
                out.insert(name.split('.').next().unwrap_or(name).to_string());
            }
        }
    }
    out
}

fn is_tokio(name: &str) -> bool {
    name == "tokio" || name.starts_with("tokio-") || name.starts_with("tokio_")
}

#[test]
fn bgp_does_not_depend_on_tokio() {
    let root = repo();
    let mut problems = Vec::new();

    let manifest = read(&root.join("bgp/Cargo.toml"));
    for d in declared_dependencies(&manifest) {
        if is_tokio(&d) {
            problems.push(format!(
                "bgp/Cargo.toml declares `{d}`: the bgp crate is sans-I/O (ARCHITECTURE.md, \
                 `bgp/`); move the code that needs it to bgp/speaker/ (a driver)"
            ));
        }
    }

    let cargo = std::env::var("CARGO")
        .ok()
        .or_else(|| option_env!("CARGO").map(String::from))
        .unwrap_or_else(|| "cargo".into());
    let out = Command::new(&cargo)
        .args([
            "tree", "-p", "bgp", "-e", "normal", "--prefix", "none", "--locked",
        ])
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .output()
        .unwrap_or_else(|e| panic!("running {cargo} tree: {e}"));
    assert!(
        out.status.success(),
        "cargo tree -p bgp -e normal failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(tree.contains("bgp v"), "cargo tree printed no bgp: {tree}");
    for line in tree.lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        if is_tokio(name) {
            problems.push(format!(
                "`cargo tree -p bgp -e normal` resolves `{}`: one of bgp's dependencies pulls it \
                 in; find which with `cargo tree -p bgp -e normal -i {name}` and drop or \
                 feature-gate it",
                line.trim()
            ));
        }
    }

    let mut files = Vec::new();
    rs_files(&root.join("bgp/src"), &mut files);
    for f in files {
        for (n, line) in read(&f).lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if code.contains("tokio::") || code.contains("use tokio") {
                problems.push(format!(
                    "{}:{}: uses tokio; the bgp crate is sans-I/O, move this to bgp/speaker/",
                    rel(&root, &f),
                    n + 1
                ));
            }
        }
    }
    fail_with("bgp must not depend on tokio", &problems);
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

// ---------------------------------------------------------------------------------------
// 2. ARCHITECTURE.md's codemap
// ---------------------------------------------------------------------------------------

/// Modules missing from a crate's codemap section today, each to be named there by the
/// engineer who owns that section (issue #11). The test fails once a gap is closed, so
/// that the entry is removed and the list only shrinks.
const KNOWN_GAPS: &[(&str, &str)] = &[];

/// Backticked spans of a line.
fn backticked(line: &str) -> Vec<&str> {
    line.split('`').skip(1).step_by(2).collect()
}

/// A backticked span that is a plain relative path (no spaces, patterns or placeholders).
fn is_path(t: &str) -> bool {
    !t.is_empty()
        && !t.starts_with('/')
        && !t.starts_with('.')
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
        && !t.contains("//")
}

/// One `### ` section of the codemap.
#[derive(Debug, Default)]
struct Section {
    /// The directory, without its trailing `/` (`bgp/speaker`).
    dir: String,
    line: usize,
    /// Paths named in it: (line, as written, what it resolved to, the places looked at).
    named: Vec<(usize, String, Option<PathBuf>, Vec<String>)>,
}

/// Reads ARCHITECTURE.md by the convention of this module; returns the sections and the
/// problems found outside them.
fn read_codemap(root: &Path, text: &str) -> (Vec<Section>, Vec<String>) {
    let mut sections: Vec<Section> = Vec::new();
    let mut problems = Vec::new();
    let mut in_codemap = false;
    let mut in_code_block = false;
    // The directory the current list item is about, once resolved.
    let mut item_dir: Option<PathBuf> = None;
    let mut item_head: Option<String> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim_start().starts_with("```") {
            in_code_block = !in_code_block;
            continue;
        }
        if in_code_block {
            continue;
        }
        if line.starts_with("## ") {
            in_codemap = line.trim() == "## Codemap";
            item_dir = None;
            continue;
        }
        if in_codemap && let Some(h) = line.strip_prefix("### ") {
            let dir = backticked(h)
                .first()
                .map(|d| d.trim_end_matches('/').to_string());
            match dir {
                Some(d) if is_path(&d) => {
                    if !root.join(&d).is_dir() {
                        problems.push(format!(
                            "ARCHITECTURE.md:{n}: the heading names `{d}/`, which is not a \
                             directory of the repository; rename the heading to the directory \
                             the section describes"
                        ));
                    }
                    sections.push(Section {
                        dir: d,
                        line: n,
                        ..Section::default()
                    });
                }
                _ => problems.push(format!(
                    "ARCHITECTURE.md:{n}: a codemap heading must start with the backticked \
                     directory it describes (### `crate/` — ...)"
                )),
            }
            item_dir = None;
            continue;
        }
        // List items: one that starts with a backticked directory scopes its names.
        if let Some(rest) = line.strip_prefix("- ") {
            item_dir = None;
            item_head = backticked(rest)
                .first()
                .filter(|t| rest.starts_with('`') && t.ends_with('/') && is_path(t))
                .map(|t| t.to_string());
        } else if !line.is_empty() && !line.starts_with(char::is_whitespace) {
            item_dir = None;
            item_head = None;
        }
        let crate_dir = sections
            .last()
            .filter(|s| in_codemap && root.join(&s.dir).join("Cargo.toml").exists())
            .map(|s| s.dir.clone());
        for t in backticked(line) {
            if !is_path(t) {
                continue;
            }
            match &crate_dir {
                Some(dir) if t.ends_with(".rs") || t.ends_with('/') => {
                    let bare = t.trim_end_matches('/');
                    let mut cands = Vec::new();
                    if let Some(d) = &item_dir {
                        cands.push(format!("{}/{bare}", rel(root, d)));
                    }
                    cands.push(format!("{dir}/src/{bare}"));
                    cands.push(format!("{dir}/{bare}"));
                    cands.push(bare.to_string());
                    let found = cands.iter().map(|c| root.join(c)).find(|p| {
                        if t.ends_with('/') {
                            p.is_dir()
                        } else {
                            p.is_file()
                        }
                    });
                    // The list item's leading directory scopes the names after it.
                    if item_dir.is_none() && item_head.as_deref() == Some(t) {
                        item_dir = found.clone();
                    }
                    let sec = sections.last_mut().expect("a section");
                    sec.named.push((n, t.to_string(), found, cands));
                }
                _ => {
                    let first = t.split('/').next().unwrap_or("");
                    if t.contains('/') && root.join(first).exists() {
                        let p = root.join(t.trim_end_matches('/'));
                        if !p.exists() {
                            problems.push(format!(
                                "ARCHITECTURE.md:{n}: `{t}` does not exist; name the path as it \
                                 is now, or remove it"
                            ));
                        }
                    }
                }
            }
        }
    }
    (sections, problems)
}

/// `pub mod x;` declarations of a Rust file (not `pub(crate)`, not inline modules).
fn pub_mods(src: &str) -> Vec<String> {
    src.lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .filter_map(|r| r.strip_suffix(';'))
        .map(|m| m.trim().to_string())
        .collect()
}

/// Workspace members from the root Cargo.toml's `members = [...]`.
fn workspace_members(manifest: &str) -> Vec<String> {
    let start = manifest
        .find("members")
        .and_then(|i| manifest[i..].find('[').map(|j| i + j + 1))
        .expect("the root Cargo.toml has workspace members");
    let end = start + manifest[start..].find(']').expect("members list ends");
    manifest[start..end]
        .split(',')
        .map(|m| m.trim().trim_matches('"').to_string())
        .filter(|m| !m.is_empty())
        .collect()
}

fn codemap_problems(root: &Path, text: &str, known_gaps: &[(&str, &str)]) -> Vec<String> {
    let (sections, mut problems) = read_codemap(root, text);
    for s in &sections {
        for (n, t, found, tried) in &s.named {
            if found.is_none() {
                problems.push(format!(
                    "ARCHITECTURE.md:{n}: `{t}` in the `{}/` section names nothing (looked for {}); \
                     name the module by its current file or directory, or remove it",
                    s.dir,
                    tried.join(", ")
                ));
            }
        }
    }
    let by_dir: BTreeMap<&str, &Section> = sections.iter().map(|s| (s.dir.as_str(), s)).collect();
    for member in workspace_members(&read(&root.join("Cargo.toml"))) {
        let Some(s) = by_dir.get(member.as_str()) else {
            problems.push(format!(
                "ARCHITECTURE.md: workspace member `{member}/` has no section in the codemap; \
                 add a `### \\`{member}/\\` — ...` heading that names its modules"
            ));
            continue;
        };
        let lib = root.join(&member).join("src/lib.rs");
        let Ok(lib_text) = std::fs::read_to_string(&lib) else {
            continue;
        };
        let named: BTreeSet<PathBuf> = s
            .named
            .iter()
            .filter_map(|(_, _, p, _)| p.clone())
            .collect();
        for m in pub_mods(&lib_text) {
            let src = root.join(&member).join("src");
            let forms = [
                src.join(format!("{m}.rs")),
                src.join(&m),
                src.join(&m).join("mod.rs"),
            ];
            let is_named = forms.iter().any(|f| named.contains(f));
            let gap = known_gaps.contains(&(member.as_str(), m.as_str()));
            if !is_named && !gap {
                problems.push(format!(
                    "ARCHITECTURE.md:{}: the `{member}/` section does not name `pub mod {m}` of \
                     {member}/src/lib.rs; add a line for `{m}.rs` (or `{m}/`) saying what it owns",
                    s.line
                ));
            }
            if is_named && gap {
                problems.push(format!(
                    "tests/tests/e2e/tidy.rs: ({member:?}, {m:?}) is named in ARCHITECTURE.md now; \
                     remove it from KNOWN_GAPS"
                ));
            }
        }
    }
    problems
}

#[test]
fn architecture_codemap_matches_the_code() {
    let root = repo();
    let text = read(&root.join("ARCHITECTURE.md"));
    fail_with(
        "ARCHITECTURE.md and the code disagree (naming convention: tests/tests/e2e/tidy.rs)",
        &codemap_problems(&root, &text, KNOWN_GAPS),
    );
}

// ---------------------------------------------------------------------------------------
// 3. Documents stay inside the repository
// ---------------------------------------------------------------------------------------

fn md_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() {
            if !name.starts_with('.') && name != "target" && name != "node_modules" {
                md_files(&p, out);
            }
        } else if name.ends_with(".md") {
            out.push(p);
        }
    }
}

/// `base` joined with `rel`, `..` and `.` resolved without touching the file system;
/// `None` when it climbs above `root`.
fn resolve_inside(root: &Path, base: &Path, rel: &str) -> Option<PathBuf> {
    let mut parts: Vec<Component<'_>> = Vec::new();
    let joined = base.join(rel);
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::CurDir => {}
            c => parts.push(c),
        }
    }
    let p: PathBuf = parts.iter().collect();
    p.starts_with(root).then_some(p)
}

/// Link targets of a markdown line: `[text](target)`, `[id]: target`, `href="target"`,
/// `src="target"`.
fn link_targets(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("](") {
        let after = &rest[i + 2..];
        let end = after.find(')').unwrap_or(after.len());
        out.push(after[..end].to_string());
        rest = &after[end..];
    }
    let t = line.trim_start();
    if t.starts_with('[')
        && let Some(i) = t.find("]:")
    {
        out.push(t[i + 2..].trim().to_string());
    }
    for attr in ["href=\"", "src=\""] {
        let mut rest = line;
        while let Some(i) = rest.find(attr) {
            let after = &rest[i + attr.len()..];
            let end = after.find('"').unwrap_or(after.len());
            out.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    out.into_iter()
        .map(|t| {
            // Drop a title (`path "title"`) and a fragment (`path#anchor`).
            let t = t
                .split_whitespace()
                .next()
                .unwrap_or("")
                .trim_matches(['<', '>']);
            t.split('#').next().unwrap_or("").to_string()
        })
        .collect()
}

/// `../` paths that start a token of a line (after a space, bracket, quote or backtick).
fn parent_paths(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = line.as_bytes();
    let mut i = 0;
    while let Some(j) = line[i..].find("../") {
        let at = i + j;
        let starts_token = at == 0
            || matches!(
                bytes[at - 1],
                b' ' | b'(' | b'[' | b'`' | b'\'' | b'"' | b'=' | b'\t'
            );
        if starts_token {
            let end = line[at..]
                .find([' ', ')', ']', '`', '\'', '"', ',', ';'])
                .map(|e| at + e)
                .unwrap_or(line.len());
            out.push(line[at..end].to_string());
            i = end;
        } else {
            i = at + 3;
        }
    }
    out
}

fn doc_problems(root: &Path, file: &Path, text: &str) -> Vec<String> {
    let name = rel(root, file);
    let base = file.parent().unwrap_or(root);
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let at = format!("{name}:{}", i + 1);
        for bad in ["../shared", "shared/reference/", "/work/", "file://"] {
            if line.contains(bad) {
                problems.push(format!(
                    "{at}: `{bad}` points outside the repository (a clone has only the \
                     repository); describe it in docs/ and point there"
                ));
            }
        }
        for target in link_targets(line) {
            if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            if target.starts_with('/') {
                problems.push(format!(
                    "{at}: link to the absolute path `{target}`; use a path relative to {name}"
                ));
                continue;
            }
            match resolve_inside(root, base, &target) {
                None => problems.push(format!(
                    "{at}: link `{target}` leaves the repository; point into the repository \
                     (docs/ for design notes)"
                )),
                Some(p) if !p.exists() => problems.push(format!(
                    "{at}: link `{target}` points at {}, which does not exist; fix the path",
                    rel(root, &p)
                )),
                Some(_) => {}
            }
        }
        for p in parent_paths(line) {
            if resolve_inside(root, base, &p).is_none() {
                problems.push(format!(
                    "{at}: `{p}` leaves the repository (relative to {name}); point into the \
                     repository instead"
                ));
            }
        }
    }
    problems
}

#[test]
fn documents_stay_inside_the_repository() {
    let root = repo();
    let mut files = Vec::new();
    md_files(&root, &mut files);
    files.sort();
    for must in ["README.md", "ARCHITECTURE.md", "docs/design.md"] {
        assert!(
            files.contains(&root.join(must)),
            "{must} is missing from the repository"
        );
    }
    let problems: Vec<String> = files
        .iter()
        .flat_map(|f| doc_problems(&root, f, &read(f)))
        .collect();
    fail_with("documents point outside the repository", &problems);
}

#[test]
fn license_matches_cargo_toml() {
    let root = repo();
    let manifest = read(&root.join("Cargo.toml"));
    assert!(
        manifest.contains("license = \"Apache-2.0\""),
        "Cargo.toml's workspace license changed: make LICENSE match it"
    );
    let license = read(&root.join("LICENSE"));
    assert!(
        license.contains("Apache License") && license.contains("Version 2.0, January 2004"),
        "LICENSE must hold the Apache License 2.0 text, as Cargo.toml says"
    );
}

// ---------------------------------------------------------------------------------------
// The checkers themselves, on made-up input.
// ---------------------------------------------------------------------------------------

#[test]
fn checkers_catch_what_they_should() {
    // Declared dependencies, in every form Cargo accepts.
    let deps = declared_dependencies(
        "[package]\nname = \"x\"\n[dependencies]\nbytes = \"1\"\ntokio.workspace = true\n\
         [dev-dependencies]\nproptest = \"1\"\n[target.'cfg(unix)'.dependencies]\nlibc = \"0.2\"\n\
         [dependencies.tokio-util]\nversion = \"0.7\"\n",
    );
    assert_eq!(
        deps.into_iter().collect::<Vec<_>>(),
        ["bytes", "libc", "tokio", "tokio-util"]
    );

    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    std::fs::create_dir_all(root.join("c/src/sub")).unwrap();
    std::fs::write(
        root.join("Cargo.toml"),
        "[workspace]\nmembers = [\"c\", \"d\"]\n",
    )
    .unwrap();
    std::fs::write(root.join("c/Cargo.toml"), "[package]\nname = \"c\"\n").unwrap();
    std::fs::write(
        root.join("c/src/lib.rs"),
        "pub mod a;\npub mod sub;\npub mod gone;\nmod private;\n",
    )
    .unwrap();
    std::fs::write(root.join("c/src/a.rs"), "").unwrap();
    std::fs::write(root.join("c/src/sub/mod.rs"), "pub mod inner;").unwrap();
    std::fs::write(root.join("c/src/sub/inner.rs"), "").unwrap();
    let arch = "# A\n\n| x | `c/src/lib.rs` `c/src/nope.rs` |\n\n## Codemap\n\n### `c/` — c\n\n\
                - `a.rs` — a\n- `sub/` — sub; `inner.rs` is in it, `stale.rs` is not\n\n\
                ## Conventions\n";
    let p = codemap_problems(root, arch, &[]);
    let all = p.join("\n");
    assert!(all.contains("`c/src/nope.rs` does not exist"), "{all}");
    assert!(
        all.contains("`stale.rs` in the `c/` section names nothing"),
        "{all}"
    );
    assert!(all.contains("does not name `pub mod gone`"), "{all}");
    assert!(all.contains("member `d/` has no section"), "{all}");
    assert!(!all.contains("inner.rs"), "{all}");
    assert!(!all.contains("pub mod a"), "{all}");
    assert!(!all.contains("pub mod sub"), "{all}");
    assert_eq!(p.len(), 4, "{all}");
    // A known gap silences one module, and is reported once it is closed.
    let p = codemap_problems(root, arch, &[("c", "gone"), ("c", "a")]);
    let all = p.join("\n");
    assert!(!all.contains("pub mod gone"), "{all}");
    assert!(
        all.contains("(\"c\", \"a\") is named in ARCHITECTURE.md now"),
        "{all}"
    );

    std::fs::create_dir_all(root.join("docs")).unwrap();
    std::fs::write(root.join("docs/there.md"), "").unwrap();
    let doc = root.join("docs/x.md");
    let text = "[ok](there.md) [up](../Cargo.toml#x) [web](https://example.org/a)\n\
                [out](../../elsewhere.md) [gone](missing.md) [abs](/etc/passwd)\n\
                see `../../shared/DESIGN.md` and /work/main, 10.0.0.0/24../32 is fine\n\
                [ref]: ../../../x\n";
    let p = doc_problems(root, &doc, text);
    let all = p.join("\n");
    assert!(
        all.contains("docs/x.md:2: link `../../elsewhere.md` leaves"),
        "{all}"
    );
    assert!(
        all.contains("docs/x.md:2: link `missing.md` points at docs/missing.md"),
        "{all}"
    );
    assert!(
        all.contains("docs/x.md:2: link to the absolute path `/etc/passwd`"),
        "{all}"
    );
    assert!(
        all.contains("docs/x.md:3: `../shared` points outside"),
        "{all}"
    );
    assert!(
        all.contains("docs/x.md:3: `/work/` points outside"),
        "{all}"
    );
    assert!(
        all.contains("docs/x.md:3: `../../shared/DESIGN.md` leaves"),
        "{all}"
    );
    assert!(
        all.contains("docs/x.md:4: link `../../../x` leaves"),
        "{all}"
    );
    assert!(!all.contains(":1:"), "{all}");
    assert!(!all.contains("../32"), "{all}");
}
