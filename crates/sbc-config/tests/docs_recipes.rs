//! Every ` ```toml ` block of `docs/operations.md` is a valid configuration, so the operator's
//! guide cannot drift from the schema (unknown keys, bad values, routes naming missing trunks).
//!
//! The rules, also stated at the top of the guide:
//!
//! - A block with a `[sip]` table is a complete file and is validated alone.
//! - Any other block is a fragment. It is validated appended to the *base*: the first complete
//!   block of the guide, cut at its `# --- 8< ---` line ([sip], [media], [admin] and the `pbx`
//!   trunk of section 2). Recipes replace what section 2 has below that line, and so does the test.
//! - Each block is validated twice: as written, and with its commented-out options enabled
//!   (lines `# key = value`, such as `# outbound.register = { expires_secs = 600 }`). So the
//!   optional keys a snippet offers are valid too, together with the rest of the snippet.
//!
//! Password files. The guide names them relative to the configuration file (`carrier.pw`, next
//! to `/etc/sbcd/sbcd.toml`). The test writes each named file, with a dummy password, into a
//! scratch directory and validates with that directory as the configuration's directory. So
//! validation reads real files, as `sbcd check-config` would. A `password_file` that starts with
//! `$CREDENTIALS_DIRECTORY` or `${CREDENTIALS_DIRECTORY}` gets the same treatment. The variable is
//! replaced by a scratch credentials directory holding the file, which is what systemd
//! (`LoadCredential=`) and sbcd's expansion do at run time. The expansion itself is not tested
//! here. Absolute paths are refused, so a snippet never depends on the machine that runs the test.
//!
//! Validation goes through [`sbc_config::load_str`], which ignores `SBC__*` environment variables.
//! A failure names each block by its line in the guide, with every validation error.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The line of the base block where fragments are cut in.
const CUT_MARK: &str = "# --- 8< ---";
/// The password written into every file a snippet names.
const DUMMY_PASSWORD: &str = "docs-test-password\n";
const CREDENTIALS_VARS: [&str; 2] = ["${CREDENTIALS_DIRECTORY}", "$CREDENTIALS_DIRECTORY"];

/// One fenced ` ```toml ` block.
struct Block {
    /// Line of the opening fence in the guide (1-based).
    line: usize,
    text: String,
}

impl Block {
    fn is_complete(&self) -> bool {
        self.text.lines().any(|l| l.trim() == "[sip]")
    }
}

fn guide_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/operations.md")
}

/// Every ` ```toml ` block, in document order; an unclosed fence is an error.
fn toml_blocks(markdown: &str) -> Result<Vec<Block>, String> {
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in markdown.lines().enumerate() {
        let fence = line.trim_start();
        match &mut open {
            None if fence.trim_end() == "```toml" => {
                open = Some(Block {
                    line: i + 1,
                    text: String::new(),
                });
            }
            None => {}
            Some(_) if fence.trim_end() == "```" => blocks.extend(open.take()),
            Some(block) => {
                block.text.push_str(line);
                block.text.push('\n');
            }
        }
    }
    match open {
        Some(block) => Err(format!("line {}: ```toml block never closed", block.line)),
        None => Ok(blocks),
    }
}

/// `text` with every commented-out option (`# dotted.key = value`) turned into a line of TOML.
fn with_options_enabled(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let indent = line.len() - line.trim_start().len();
        let option = line.trim_start().strip_prefix("# ").filter(|rest| {
            rest.split_once('=').is_some_and(|(key, value)| {
                let key = key.trim_end();
                !key.is_empty()
                    && key
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
                    && !value.trim().is_empty()
            })
        });
        match option {
            Some(rest) => {
                out.push_str(&line[..indent]);
                out.push_str(rest);
            }
            None => out.push_str(line),
        }
    }
    out
}

/// The values of every `password_file = "…"` in `text`.
fn password_files(text: &str) -> Vec<String> {
    let mut files = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("password_file") {
        rest = &rest[at + "password_file".len()..];
        let Some(value) = rest.trim_start().strip_prefix('=') else {
            continue;
        };
        let Some(value) = value.trim_start().strip_prefix('"') else {
            continue;
        };
        if let Some(end) = value.find('"') {
            files.push(value[..end].to_owned());
        }
    }
    files
}

/// Writes the files `text` names into `config_dir` (relative paths) or `creds_dir`
/// (`$CREDENTIALS_DIRECTORY/…`) and returns `text` with the credentials variable replaced.
fn provide_password_files(
    text: &str,
    config_dir: &Path,
    creds_dir: &Path,
) -> Result<String, String> {
    for file in password_files(text) {
        let target = match CREDENTIALS_VARS
            .iter()
            .find_map(|var| file.strip_prefix(var))
        {
            Some(name) => creds_dir.join(name.trim_start_matches('/')),
            None if Path::new(&file).is_absolute() => {
                return Err(format!(
                    "password_file {file:?}: use a path relative to sbcd.toml in the guide's snippets"
                ));
            }
            None => config_dir.join(&file),
        };
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&target, DUMMY_PASSWORD)
            .map_err(|e| format!("{}: {e}", target.display()))?;
    }
    let creds = creds_dir.display().to_string();
    Ok(CREDENTIALS_VARS
        .iter()
        .fold(text.to_owned(), |t, var| t.replace(var, &creds)))
}

/// A fresh scratch directory.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("sbc-config-docs-recipes")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

#[test]
fn every_toml_block_of_the_operations_guide_is_valid() {
    let path = guide_path();
    let markdown = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let shown = "docs/operations.md";
    let blocks = toml_blocks(&markdown).unwrap_or_else(|e| panic!("{shown}: {e}"));
    assert!(!blocks.is_empty(), "{shown}: no ```toml blocks found");

    let base_block = blocks
        .iter()
        .find(|b| b.is_complete())
        .unwrap_or_else(|| panic!("{shown}: no complete block (with [sip]) to be the base"));
    let base = base_block
        .text
        .split_inclusive('\n')
        .take_while(|l| !l.trim_start().starts_with(CUT_MARK))
        .collect::<String>();
    assert!(
        base.len() < base_block.text.len(),
        "{shown}:{}: the base block has no {CUT_MARK:?} line where fragments are cut in",
        base_block.line
    );

    let config_dir = scratch("config");
    let creds_dir = config_dir.join("credentials");
    let mut failures = String::new();
    let (mut complete, mut fragments) = (0, 0);
    for block in &blocks {
        let toml = if block.is_complete() {
            complete += 1;
            block.text.clone()
        } else {
            fragments += 1;
            format!("{base}\n{}", block.text)
        };
        let kind = if block.is_complete() {
            "complete file"
        } else {
            "fragment after the base (trunk[0] is the base's pbx trunk)"
        };
        let enabled = with_options_enabled(&toml);
        let mut variants = vec![(toml.clone(), kind.to_owned())];
        if enabled != toml {
            variants.push((enabled, format!("{kind}, commented-out options enabled")));
        }
        for (toml, kind) in variants {
            let checked = provide_password_files(&toml, &config_dir, &creds_dir).and_then(|toml| {
                sbc_config::load_str(&toml, &config_dir).map_err(|e| e.to_string())
            });
            if let Err(errors) = checked {
                let _ = writeln!(failures, "{shown}:{}: {kind}:", block.line);
                for line in errors.lines() {
                    let _ = writeln!(failures, "    {line}");
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "invalid configuration in the guide:\n{failures}"
    );
    assert!(
        complete >= 1 && fragments >= 1,
        "{shown}: expected complete files and fragments, found {complete} and {fragments}"
    );
}

#[test]
fn blocks_and_password_files_are_found() {
    let md = "text\n```toml\n[sip]\na = 1\n```\n```sh\nx\n```\n  ```toml\nb = { password_file = \"x.pw\" }\n```\n";
    let blocks = toml_blocks(md).expect("closed fences");
    assert_eq!(blocks.len(), 2);
    assert_eq!((blocks[0].line, blocks[1].line), (2, 9));
    assert!(blocks[0].is_complete() && !blocks[1].is_complete());
    assert_eq!(password_files(&blocks[1].text), ["x.pw"]);
    assert!(toml_blocks("```toml\na = 1\n").is_err());
    assert_eq!(
        with_options_enabled("# prose, not a key\n  # a.b = 1   # why\n#c = 2\n# d =\n"),
        "# prose, not a key\n  a.b = 1   # why\n#c = 2\n# d =\n"
    );

    let dir = scratch("unit");
    let creds = dir.join("creds");
    let text = "a = { password_file = \"$CREDENTIALS_DIRECTORY/pw\" }\n\
                b = { password_file = \"${CREDENTIALS_DIRECTORY}/pw2\" }\n";
    let out = provide_password_files(text, &dir, &creds).expect("files written");
    assert!(!out.contains("CREDENTIALS_DIRECTORY"));
    assert!(creds.join("pw").is_file() && creds.join("pw2").is_file());
    assert!(provide_password_files("password_file = \"/etc/x\"", &dir, &creds).is_err());
}
