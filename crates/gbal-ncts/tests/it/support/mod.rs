//! xmllint's verdicts, against the XSDs kept in the repository.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use gbal_ncts::MessageKind;
use gbal_testkit::reference;

/// The XSD file of a message kind.
pub fn xsd_for(kind: MessageKind) -> PathBuf {
    reference::xsd(&format!("{}.xsd", kind.root()))
}

/// Documents per xmllint invocation (each one loads the schema once).
const BATCH: usize = 500;

/// xmllint's verdict on each document against the schema of `kind`: true for "validates".
/// Documents are written to a temporary directory and validated in batches.
pub fn xmllint_verdicts(kind: MessageKind, docs: &[String]) -> Vec<bool> {
    let xsd = xsd_for(kind);
    let dir = tempfile::tempdir().expect("temporary directory");
    let names: Vec<String> = (0..docs.len()).map(|i| format!("d{i:06}.xml")).collect();
    for (name, doc) in names.iter().zip(docs) {
        fs::write(dir.path().join(name), doc).expect("write a document");
    }
    let mut verdicts = vec![false; docs.len()];
    for (batch_index, batch) in names.chunks(BATCH).enumerate() {
        let output = Command::new("xmllint")
            .arg("--noout")
            .arg("--schema")
            .arg(&xsd)
            .args(batch)
            .current_dir(dir.path())
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run xmllint ({e}); install it (libxml2-utils) to run these tests")
            });
        let stderr = String::from_utf8_lossy(&output.stderr);
        // Exit status 5 means the schema did not compile; any verdict would be meaningless.
        assert!(
            matches!(output.status.code(), Some(0..=4)),
            "xmllint failed ({}) on {}:\n{stderr}",
            output.status,
            xsd.display()
        );
        // A document that does not parse gets no verdict line at all, so only
        // "<name> validates" counts as true.
        for line in stderr.lines() {
            let index = line
                .strip_suffix(" validates")
                .and_then(|name| batch.iter().position(|b| b == name));
            if let Some(index) = index {
                verdicts[batch_index * BATCH + index] = true;
            }
        }
    }
    verdicts
}
