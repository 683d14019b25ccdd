//! Bench binary for the figures that need whole processes (see BENCHMARKS.md).

use anyhow::{bail, Result};

pub fn run(args: &[String]) -> Result<()> {
    bail!("no benchmark named {args:?} yet")
}
