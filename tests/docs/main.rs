//! The documents against the tree: README.md and docs/*.md.
//!
//! - every relative link resolves to a file (and its `#anchor` to a heading);
//! - every repository path they name in backticks exists;
//! - the configuration reference in docs/configuration.md is generated from
//!   config/example.toml, its one source (`UPDATE_DOCS=1 cargo test --test
//!   docs` writes it anew after a change there).

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Folders whose paths a document may name; a path under any other (build
/// output such as `target/release/worker`) is not checked.
const TRACKED_FOLDERS: [&str; 13] = [
    "src/",
    "tests/",
    "scripts/",
    "deploy/",
    "config/",
    "schemas/",
    "examples/",
    "worker/",
    "docs/",
    "fuzz/",
    ".ci/",
    "Dockerfile",
    "docker-compose.",
];

fn documents() -> Vec<PathBuf> {
    let mut documents = vec![Path::new(ROOT).join("README.md")];
    let mut pages: Vec<PathBuf> = fs::read_dir(Path::new(ROOT).join("docs"))
        .expect("docs/ exists")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    pages.sort();
    documents.extend(pages);
    documents
}

fn relative(path: &Path) -> String {
    path.strip_prefix(ROOT).unwrap().display().to_string()
}

/// The text outside fenced code blocks: links and paths in prose, not in
/// commands or sample output.
fn prose(text: &str) -> String {
    let mut fenced = false;
    let mut kept = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    kept
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as
/// hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    let mut fenced = false;
    let mut anchors = BTreeSet::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            anchors.insert(anchor(line.trim_start_matches('#')));
        }
    }
    anchors
}

/// The targets of `[text](target)` links.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("](") {
        rest = &rest[start + 2..];
        if let Some(end) = rest.find(')') {
            targets.push(rest[..end].to_string());
            rest = &rest[end..];
        }
    }
    targets
}

#[test]
fn every_relative_link_in_the_docs_resolves() {
    let mut broken = Vec::new();
    for document in documents() {
        let text = fs::read_to_string(&document).unwrap();
        for target in link_targets(&prose(&text)) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, fragment) = target.split_once('#').unwrap_or((&target, ""));
            let file = if file.is_empty() {
                document.clone()
            } else {
                document.parent().unwrap().join(file)
            };
            if !file.exists() {
                broken.push(format!("{}: {target}: no such file", relative(&document)));
            } else if !fragment.is_empty() {
                let target_text = fs::read_to_string(&file).unwrap_or_default();
                if !anchors(&target_text).contains(fragment) {
                    broken.push(format!(
                        "{}: {target}: no such heading",
                        relative(&document)
                    ));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// A backticked word that names a file or folder of the repository.
fn repository_path(word: &str) -> Option<&str> {
    let path = word.trim_end_matches(['.', ',', ':']);
    let named = TRACKED_FOLDERS
        .iter()
        .any(|folder| path.starts_with(folder));
    let placeholder = path.contains(['<', '>', '*', '{', '}', ' ', '$']);
    (named && !placeholder).then_some(path)
}

#[test]
fn every_repository_path_the_docs_name_exists() {
    let mut missing = Vec::new();
    for document in documents() {
        let text = prose(&fs::read_to_string(&document).unwrap());
        for (index, quoted) in text.split('`').enumerate() {
            // Odd pieces are inside backticks.
            let Some(path) = (index % 2 == 1).then(|| repository_path(quoted)).flatten() else {
                continue;
            };
            let path = path.split_once(':').map_or(path, |(file, _)| file);
            if !Path::new(ROOT).join(path).exists() {
                missing.push(format!("{}: `{path}`", relative(&document)));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "paths that do not exist:\n{}",
        missing.join("\n")
    );
}

/// One row of the configuration reference.
struct Key {
    name: String,
    default: String,
    meaning: String,
}

/// The keys of config/example.toml with their defaults and the comment above
/// each. Keys in a row share the comment above the first (`token_url`,
/// `client_id`, ...); a key shown commented out (`# secrets = [...]`) has no
/// default.
fn example_keys(example: &str) -> Vec<Key> {
    let mut keys = Vec::new();
    let mut section = String::new();
    let mut comment: Vec<String> = Vec::new();
    let mut after_key = false;
    for line in example.lines().map(str::trim) {
        if line.trim_start_matches('#').trim().starts_with("[[") {
            break; // [[enate.subscriptions]]: described in its own words
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            comment.clear();
            after_key = false;
        } else if let Some((name, value)) = assignment(line) {
            let commented_out = line.starts_with('#');
            keys.push(Key {
                name: format!("{section}.{name}"),
                default: if commented_out {
                    "none".to_string()
                } else {
                    format!("`{value}`")
                },
                meaning: comment.join(" "),
            });
            after_key = true;
        } else if let Some(text) = line.strip_prefix('#') {
            // A comment after a key starts the next key's.
            if after_key {
                comment.clear();
                after_key = false;
            }
            // A bare `#` ends a section's preface: the next key's comment follows it.
            if text.trim().is_empty() {
                comment.clear();
            } else if !section.is_empty() {
                comment.push(text.trim().to_string());
            }
        }
    }
    keys
}

/// `key = value` or `# key = value`: the key and its value.
fn assignment(line: &str) -> Option<(&str, &str)> {
    let line = line.trim_start_matches('#').trim();
    let (name, value) = line.split_once(" = ")?;
    name.chars()
        .all(|c| c.is_ascii_lowercase() || c == '_')
        .then_some((name, value.trim()))
}

fn reference_table(keys: &[Key]) -> String {
    let mut table = String::from("| key | default | meaning |\n|---|---|---|\n");
    for key in keys {
        table.push_str(&format!(
            "| `{}` | {} | {} |\n",
            key.name,
            key.default.replace('|', "\\|"),
            key.meaning.replace('|', "\\|")
        ));
    }
    table
}

const BEGIN: &str =
    "<!-- the reference below is generated from config/example.toml by tests/docs -->\n";
const END: &str = "<!-- end of the generated reference -->\n";

#[test]
fn the_configuration_reference_is_generated_from_the_example() {
    let example = fs::read_to_string(Path::new(ROOT).join("config/example.toml")).unwrap();
    let keys = example_keys(&example);
    assert!(
        keys.len() > 40,
        "keys read from the example: {}",
        keys.len()
    );
    let page_path = Path::new(ROOT).join("docs/configuration.md");
    let page = fs::read_to_string(&page_path).unwrap();
    let (before, rest) = page
        .split_once(BEGIN)
        .expect("the page marks the reference");
    let (current, after) = rest.split_once(END).expect("the page marks its end");
    let wanted = reference_table(&keys);
    if current == wanted {
        return;
    }
    if std::env::var_os("UPDATE_DOCS").is_some() {
        fs::write(&page_path, format!("{before}{BEGIN}{wanted}{END}{after}")).unwrap();
        return;
    }
    panic!(
        "docs/configuration.md's reference is not config/example.toml's: \
         run `UPDATE_DOCS=1 cargo test --test docs` and commit the page"
    );
}

/// The source files below `dir`, relative to src/.
fn source_files(dir: &Path, found: &mut Vec<String>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            source_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let src = Path::new(ROOT).join("src");
            found.push(path.strip_prefix(src).unwrap().display().to_string());
        }
    }
}

#[test]
fn the_layout_page_names_every_source_file() {
    let layout = fs::read_to_string(Path::new(ROOT).join("docs/layout.md")).unwrap();
    let mut files = Vec::new();
    source_files(&Path::new(ROOT).join("src"), &mut files);
    files.sort();
    let named = |file: &str| match file.rsplit_once('/') {
        None => layout.contains(&format!("`{file}`")),
        Some((folder, name)) => {
            layout.contains(&format!("`{file}`"))
                || layout.lines().any(|line| {
                    line.contains(&format!("`{folder}/`")) && line.contains(&format!("`{name}`"))
                })
        }
    };
    let missing: Vec<&String> = files.iter().filter(|file| !named(file)).collect();
    assert!(
        missing.is_empty(),
        "docs/layout.md does not name: {missing:?}"
    );
}
