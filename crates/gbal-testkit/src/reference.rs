//! The reference material the tests check gbal against, kept in the repository: the NCTS
//! message schemas (`crates/gbal-ncts/schemas`), gbal's own example messages
//! (`crates/gbal-ncts/testdata/messages`) and HMRC's published API documents
//! (`crates/gbal-api/tests/hmrc`). A missing file is a failure, never a skip.

use std::path::{Path, PathBuf};

/// The workspace's `crates/` folder.
fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the testkit lives in crates/")
        .to_path_buf()
}

#[track_caller]
fn existing(path: PathBuf) -> PathBuf {
    assert!(
        path.exists(),
        "{} is part of the repository and is missing",
        path.display()
    );
    path
}

/// The folder of the NCTS message XSDs (`CD034A.xsd`, `CD037A.xsd`, `CD906A.xsd`,
/// `CC917A.xsd` and the files they include).
#[track_caller]
pub fn xsd_dir() -> PathBuf {
    existing(crates_dir().join("gbal-ncts/schemas"))
}

/// The XSD of one message, by file name (`"CD034A.xsd"`).
#[track_caller]
pub fn xsd(file: &str) -> PathBuf {
    existing(xsd_dir().join(file))
}

/// The folder of gbal's own example messages: `valid/` and `invalid/`.
#[track_caller]
pub fn messages_dir() -> PathBuf {
    existing(crates_dir().join("gbal-ncts/testdata/messages"))
}

/// One example message, by its path below [`messages_dir`] (`"valid/IE037.xml"`).
#[track_caller]
pub fn message_path(relative: &str) -> PathBuf {
    existing(messages_dir().join(relative))
}

/// The text of one example message, by its path below [`messages_dir`].
#[track_caller]
pub fn message(relative: &str) -> String {
    let path = message_path(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The folder of HMRC's published documents for one API version (`"v1"` or `"v2"`):
/// `application.yaml` and `schemas/`.
#[track_caller]
pub fn hmrc_dir(version: &str) -> PathBuf {
    existing(crates_dir().join("gbal-api/tests/hmrc").join(version))
}

/// The folder of HMRC's JSON schemas for one API version.
#[track_caller]
pub fn hmrc_schemas_dir(version: &str) -> PathBuf {
    existing(hmrc_dir(version).join("schemas"))
}
