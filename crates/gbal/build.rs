//! Records the git commit gbal is built from, for `gbal --version`.
//!
//! `GBAL_GIT_COMMIT` wins when set (the image build passes it: the Docker context has no
//! `.git`); otherwise `git rev-parse --short HEAD`; otherwise (a source tarball, no git)
//! "unknown".

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=GBAL_GIT_COMMIT");
    let commit = std::env::var("GBAL_GIT_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .map(|c| c.trim().to_owned())
        .or_else(|| {
            watch_git_head();
            git(&["rev-parse", "--short", "HEAD"])
        })
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo::rustc-env=GBAL_GIT_COMMIT={commit}");
}

/// Runs git in this crate's directory; its trimmed output when it succeeds.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// Asks cargo to run this script again when HEAD moves: a checkout changes `HEAD`, a commit
/// changes the branch's ref (a loose file, or `packed-refs` once packed). Only existing
/// files are named: cargo reruns every build for a missing one.
fn watch_git_head() {
    let absolute = |p: String| -> PathBuf {
        let p = PathBuf::from(p);
        if p.is_absolute() {
            p
        } else {
            Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
        }
    };
    let Some(git_dir) = git(&["rev-parse", "--git-dir"]).map(absolute) else {
        return;
    };
    // In a worktree the branch refs live in the common directory.
    let common = git(&["rev-parse", "--git-common-dir"])
        .map(absolute)
        .unwrap_or_else(|| git_dir.clone());
    let mut files = vec![git_dir.join("HEAD"), common.join("packed-refs")];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        files.push(common.join(branch));
    }
    for file in files.iter().filter(|f| f.is_file()) {
        println!("cargo::rerun-if-changed={}", file.display());
    }
}
