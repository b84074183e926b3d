//! `testware images build|import`: the images a Cargo workspace declares in its
//! packages' `[package.metadata.testware.images]` (see `local_cluster::images`),
//! built by content and loaded into a cluster or podman's store.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use local_cluster::images;
use local_cluster::layout::Layout;

use crate::cluster::scratch_dir;

/// `testware images …`.
#[derive(Args)]
pub struct ImagesArgs {
    #[command(subcommand)]
    command: ImagesCommand,
    /// The Cargo workspace whose packages declare the images (default: the current directory).
    #[arg(long, value_name = "DIR", global = true)]
    workspace: Option<PathBuf>,
}

#[derive(Subcommand)]
enum ImagesCommand {
    /// Build the images whose content changed; print every image's archive.
    Build,
    /// Build, then load the images where they are run; print their references.
    #[command(alias = "load")]
    Import {
        /// Where to load them.
        #[arg(long, value_enum, default_value = "local")]
        provider: Target,
    },
    /// List the declared images: reference and the package declaring it.
    List,
}

/// Where images are loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// The local cluster's containerd.
    Local,
    /// The kind cluster `testware`.
    Kind,
    /// The k3d cluster `testware`.
    K3d,
    /// podman's image store (the component tier's containers).
    Podman,
}

/// Runs `testware images …`.
///
/// # Errors
/// The workspace cannot be read, a build or a load fails (naming the image).
pub fn run(args: ImagesArgs, cache: &Path) -> anyhow::Result<()> {
    let workspace = match args.workspace {
        Some(dir) => dir,
        None => std::env::current_dir()?,
    };
    if let ImagesCommand::List = args.command {
        for (package, version, image) in images::declarations(&workspace)? {
            let tag = image.tag.unwrap_or(version);
            println!("localhost/{}:{tag}  ({package})", image.name);
        }
        return Ok(());
    }
    let specs = images::declared_images(&workspace, cache)?;
    let scratch = scratch_dir(cache);
    let built = images::build(&specs, cache, &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    let archives = built?;
    match args.command {
        ImagesCommand::Build | ImagesCommand::List => {
            for archive in &archives {
                println!("{}", archive.display());
            }
        }
        ImagesCommand::Import {
            provider: Target::Podman,
        } => {
            for reference in images::load_into_podman(&archives)? {
                println!("{reference}");
            }
        }
        ImagesCommand::Import {
            provider: Target::Local,
        } => {
            let layout = Layout::from_env();
            for (archive, spec) in archives.iter().zip(&specs) {
                images::import(&layout, archive)?;
                println!("{}", spec.reference());
            }
        }
        ImagesCommand::Import { provider } => {
            let program = if provider == Target::Kind {
                "kind"
            } else {
                "k3d"
            };
            images::load_into(program, "testware", &archives)?;
            for spec in &specs {
                println!("{}", spec.reference());
            }
        }
    }
    Ok(())
}
