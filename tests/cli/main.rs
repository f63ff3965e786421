//! Integration tests: the real `lineup` binary, a fresh temporary directory per test, a real
//! SQLite file. One test binary (as ripgrep and just do) so it links once.

mod build;
mod commands;
mod config_errors;
mod harness;
mod m3u;
mod operability;
mod signals;
