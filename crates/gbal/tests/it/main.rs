//! Black-box tests of the `gbal` binary: each runs the real executable.

mod process;
mod serve;
mod tools;
