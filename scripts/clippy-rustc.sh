#!/usr/bin/env bash
# Lints while building: CI (.ci/run) sets RUSTC_WORKSPACE_WRAPPER to this script, so cargo compiles
# the workspace's own crates with clippy-driver -- rustc with clippy's lints added, which still
# generates code -- and the dependencies with plain rustc. One build then does what
# `cargo clippy --workspace --all-targets -- -D warnings` did and also produces the binaries the
# tests run, instead of a separate `cargo clippy` checking every dependency a second time. On
# fresh clones of this VM (2026-12-05) clippy plus the test build took 1,033 s as two passes and
# 971 s as one: the dependencies' build scripts and proc macros are shared either way, so what
# this saves is only their type-checking.
# cargo calls it as `WRAPPER RUSTC ARGS...`; clippy-driver recognises and drops the rustc path.
# clippy-driver turns off rustc's MIR optimizations (its MIR lints need unoptimized MIR); LLVM's
# are unchanged, and the workspace's results do not depend on either.
# bash, not sh: dash drops environment variables whose names are not shell identifiers, such as
# the CARGO_BIN_EXE_kdsr-edge that cargo sets for the integration tests; bash passes them on.
# By hand: RUSTC_WORKSPACE_WRAPPER="$PWD/scripts/clippy-rustc.sh" cargo test --workspace
exec clippy-driver "$@" -D warnings
