//! `cargo xtask reproduce <experiment>`: the project's main job. Each experiment reproduces one dataset's
//! tables and figures. The stages that exist today run; the command then says which stages are missing and
//! exits with an error, so no one mistakes a prepared dataset for a reproduction.

use anyhow::bail;

#[derive(clap::Args)]
pub struct Args {
    /// The experiment: mnist or fashion-mnist.
    experiment: String,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let dataset = match args.experiment.as_str() {
        "mnist" => "mnist",
        "fashion-mnist" => "fashion-mnist",
        other => bail!("unknown experiment `{other}`: choose mnist or fashion-mnist"),
    };
    let binary = crate::build_ssinfogan()?;
    eprintln!("[1/4] data");
    crate::data::obtain(&binary, dataset, &[])?;
    bail!(
        "the data of `{}` is ready; single runs train with `ssinfogan train` (see README.md), but this command \
         does not yet run the sweep [2/4], the evaluation [3/4] or the report [4/4]",
        args.experiment
    )
}
