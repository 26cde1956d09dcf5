//! PostgreSQL's own programs (`initdb`, `pg_ctl`, `pgbench`), for the tests that run a server
//! of their own and for the benchmarks. Found in `GBAL_PG_BIN`, else in the newest
//! `/usr/lib/postgresql/<version>/bin` (where Debian installs them), else on `PATH`. A test
//! that needs them fails, saying where it looked, when they are not there: never a skip.

use std::path::PathBuf;

/// The folders to look in, in order.
fn candidates() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("GBAL_PG_BIN")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .into_iter()
        .collect();
    if let Ok(versions) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut found: Vec<(Vec<u32>, PathBuf)> = versions
            .flatten()
            .map(|v| {
                let name = v.file_name().to_string_lossy().into_owned();
                let version = name.split('.').map(|p| p.parse().unwrap_or(0)).collect();
                (version, v.path().join("bin"))
            })
            .collect();
        // Newest first: 16 before 15 before 9.6.
        found.sort_by(|a, b| b.0.cmp(&a.0));
        dirs.extend(found.into_iter().map(|(_, dir)| dir));
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs
}

/// The first folder of [`candidates`] that holds every one of `programs`.
pub fn find_dir(programs: &[&str]) -> Option<PathBuf> {
    candidates()
        .into_iter()
        .find(|dir| programs.iter().all(|p| dir.join(p).is_file()))
}

/// The folder holding every one of `programs`; panics, saying where it looked and what to
/// install, when there is none.
#[track_caller]
pub fn dir_with(programs: &[&str]) -> PathBuf {
    find_dir(programs).unwrap_or_else(|| {
        panic!(
            "PostgreSQL's programs {programs:?} were not found in GBAL_PG_BIN ({}), \
             /usr/lib/postgresql/*/bin or PATH: install the PostgreSQL server package \
             (Debian: postgresql), or set GBAL_PG_BIN to the folder holding them \
             (scripts/test does both)",
            std::env::var("GBAL_PG_BIN").unwrap_or_else(|_| "unset".to_owned())
        )
    })
}

/// One program, e.g. `program("initdb")`; panics as [`dir_with`] does.
#[track_caller]
pub fn program(name: &str) -> PathBuf {
    dir_with(&[name]).join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "were not found in GBAL_PG_BIN")]
    fn a_missing_program_fails_saying_where_it_looked() {
        program("gbal-no-such-postgresql-program");
    }
}
