//! Where a model comes from when `-m` is not given: the default model's name, the places it is
//! searched for (in a documented order), and the copy built into the binary (feature
//! `embed-default-model`, on by default).
//!
//! Search order for [`resolve`] (the first that exists wins):
//! 1. `-m PATH` (the CLI's explicit model; never searched further: a missing one is an error);
//! 2. `KDSR_MODEL=PATH` (the same, from the environment);
//! 3. beside the executable: `EXE_DIR/NAME` and `EXE_DIR/FILE` (FILE = the last part of NAME,
//!    e.g. `student-edge-camera` for `edge/camera/student-edge-camera`), then `EXE_DIR/models/NAME`;
//! 4. an installed layout (the .deb's `/usr/share/kdsr/models`): `EXE_DIR/../share/kdsr/models/NAME`
//!    and `…/FILE`, then `NAME` in its folders and their folders, as in rule 5;
//! 5. the repository's `models/`: `ROOT/models/NAME`, then `ROOT/models/*/NAME` and
//!    `ROOT/models/*/*/NAME`, for each folder `ROOT` above the executable that holds a
//!    `Cargo.toml` and a `models/` folder (a binary under `target/release/` finds the checkout it
//!    was built in, whatever the working directory);
//! 6. the model built into the binary (only for the default NAME, with `embed-default-model`).
//!
//! A model "exists" at a candidate path when [`crate::Upscaler::load`] would find one there: the
//! split pair `P-ide.onnx` + `P-sr.onnx`, the file itself, `P.onnx`, or a folder. When nothing
//! is found, the error lists every place searched.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The default model's name relative to a `models/` folder, as a macro so that
/// `include_bytes!` can name its files; [`DEFAULT_MODEL`] is the one constant to change.
macro_rules! default_model_name {
    () => {
        "edge/camera/student-edge-camera"
    };
}

/// The default model: a split prefix relative to the repository's `models/` folder (the files
/// are `models/edge/camera/student-edge-camera-ide.onnx` and `-sr.onnx`: the camera model, best
/// on an unknown photo; `models/edge/README.md` says which model when). The one place that names it.
pub const DEFAULT_MODEL: &str = default_model_name!();

/// The default model's graphs, built in with the `embed-default-model` feature: (IDE, SR).
#[cfg(feature = "embed-default-model")]
pub const EMBEDDED: Option<(&[u8], &[u8])> = Some((
    include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../models/",
        default_model_name!(),
        "-ide.onnx"
    )) as &[u8],
    include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../models/",
        default_model_name!(),
        "-sr.onnx"
    )) as &[u8],
));

/// Without the `embed-default-model` feature no model is built in.
#[cfg(not(feature = "embed-default-model"))]
pub const EMBEDDED: Option<(&[u8], &[u8])> = None;

/// The environment variable naming a model when `-m` is not given.
pub const ENV_VAR: &str = "KDSR_MODEL";

/// Where a model was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// A path to hand to [`crate::Upscaler::load`].
    Path(PathBuf),
    /// The default model built into the binary ([`EMBEDDED`]).
    Embedded,
}

/// A found model and which rule found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The model.
    pub found: Found,
    /// Which rule of the search order found it (e.g. `-m`, `KDSR_MODEL`, `beside the
    /// executable`).
    pub how: String,
}

impl Resolved {
    /// A label for messages and reports: the path, or `<built-in edge/camera/student-edge-camera>`.
    pub fn label(&self) -> String {
        match &self.found {
            Found::Path(p) => p.display().to_string(),
            Found::Embedded => embedded_label(DEFAULT_MODEL),
        }
    }
}

/// The label of the built-in copy of model `name`.
pub fn embedded_label(name: &str) -> String {
    format!("<built-in {name}>")
}

/// Whether [`crate::Upscaler::load`] would find a model at `p`.
pub fn model_exists(p: &Path) -> bool {
    p.is_file()
        || p.is_dir()
        || [SPLIT_IDE_SUFFIX, SPLIT_SR_SUFFIX, ".onnx"]
            .iter()
            .any(|s| suffixed(p, s).is_file())
}

/// The places searched for model `name` (rules 3–5 of the module docs) for an executable at
/// `exe`, with the rule each belongs to, in order, without duplicates.
pub fn search_places(name: &str, exe: Option<&Path>) -> Vec<(&'static str, PathBuf)> {
    let file = Path::new(name)
        .file_name()
        .map_or_else(|| PathBuf::from(name), PathBuf::from);
    let mut out: Vec<(&'static str, PathBuf)> = Vec::new();
    let mut push = |rule: &'static str, p: PathBuf| {
        if !out.iter().any(|(_, q)| *q == p) {
            out.push((rule, p));
        }
    };
    let Some(dir) = exe.and_then(Path::parent) else {
        return out;
    };
    push("beside the executable", dir.join(name));
    push("beside the executable", dir.join(&file));
    push("beside the executable", dir.join("models").join(name));
    let share = dir.join("..").join("share").join("kdsr").join("models");
    push("installed layout", share.join(name));
    push("installed layout", share.join(&file));
    for p in nested(&share, name) {
        push("installed layout", p);
    }
    for root in dir.ancestors().skip(1) {
        let models = root.join("models");
        if root.join("Cargo.toml").is_file() && models.is_dir() {
            push("the repository's models/", models.join(name));
            for p in nested(&models, name) {
                push("the repository's models/", p);
            }
        }
    }
    out
}

/// A bare name (`-n student-edge-int8`) in each folder of a models folder (`models/edge/`), then
/// one level further (`-n student-edge-camera` in `models/edge/camera/`).
fn nested(models: &Path, name: &str) -> Vec<PathBuf> {
    let subs = subfolders(models);
    let deeper = subs.iter().flat_map(|sub| subfolders(sub));
    let mut out: Vec<PathBuf> = subs.iter().map(|sub| sub.join(name)).collect();
    out.extend(deeper.map(|subsub| subsub.join(name)));
    out
}

/// The folders in `dir`, sorted (none if it cannot be read).
fn subfolders(dir: &Path) -> Vec<PathBuf> {
    let mut subs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    subs.retain(|p| p.is_dir());
    subs.sort();
    subs
}

/// Finds model `name` (default [`DEFAULT_MODEL`]) by the search order of the module docs:
/// `explicit` is `-m`, `env` the value of `KDSR_MODEL`, `exe` the running executable
/// (`std::env::current_exe`). Errors: [`Error::Model`] listing every place searched.
pub fn resolve_with(
    explicit: Option<&Path>,
    name: Option<&str>,
    env: Option<&Path>,
    exe: Option<&Path>,
) -> Result<Resolved> {
    if let Some(p) = explicit {
        return Ok(Resolved {
            found: Found::Path(p.to_path_buf()),
            how: "-m".into(),
        });
    }
    if name.is_none()
        && let Some(p) = env.filter(|p| !p.as_os_str().is_empty())
    {
        return Ok(Resolved {
            found: Found::Path(p.to_path_buf()),
            how: ENV_VAR.into(),
        });
    }
    let name = name.unwrap_or(DEFAULT_MODEL);
    let places = search_places(name, exe);
    if let Some((rule, p)) = places.iter().find(|(_, p)| model_exists(p)) {
        return Ok(Resolved {
            found: Found::Path(p.clone()),
            how: (*rule).to_owned(),
        });
    }
    if name == DEFAULT_MODEL && EMBEDDED.is_some() {
        return Ok(Resolved {
            found: Found::Embedded,
            how: "built into the binary".into(),
        });
    }
    let mut listed: Vec<String> = places
        .iter()
        .map(|(rule, p)| format!("  {} ({rule})", p.display()))
        .collect();
    if exe.is_none() {
        listed.push("  (the executable's path is unknown, so no place beside it)".into());
    }
    if name == DEFAULT_MODEL {
        listed.push(
            "  the built-in copy (this binary was built without the `embed-default-model` \
             feature)"
                .to_owned(),
        );
    }
    Err(Error::model(
        Path::new(name),
        format!(
            "not found; searched, in order (-m and {ENV_VAR} not set):\n{}\nGive a model with \
             -m PATH or {ENV_VAR}=PATH (a split prefix, an .onnx file or a folder), copy the \
             model's files beside the executable, or export one with `converter export`",
            listed.join("\n")
        ),
    ))
}

/// [`resolve_with`] for this process: `KDSR_MODEL` from the environment and the running
/// executable's path.
pub fn resolve(explicit: Option<&Path>, name: Option<&str>) -> Result<Resolved> {
    let env = std::env::var_os(ENV_VAR).map(PathBuf::from);
    let exe = std::env::current_exe().ok();
    resolve_with(explicit, name, env.as_deref(), exe.as_deref())
}

/// A file path of model `name` for tools that need files (the benches): `KDSR_MODEL`-style
/// `explicit` path, else the first place of [`search_places`] for the executable that holds
/// it. Errors like [`resolve_with`]; the built-in copy does not count.
pub fn find_files(explicit: Option<&Path>, name: Option<&str>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    let name = name.unwrap_or(DEFAULT_MODEL);
    let exe = std::env::current_exe().ok();
    match resolve_with(None, Some(name), None, exe.as_deref()) {
        Ok(Resolved {
            found: Found::Path(p),
            ..
        }) => Ok(p),
        Ok(_) => Err(Error::model(
            Path::new(name),
            "only the built-in copy was found; this tool needs the model's files",
        )),
        Err(e) => Err(e),
    }
}

/// What a model path names (see [`locate`]).
pub(crate) enum Located {
    /// A split prefix.
    Split(PathBuf),
    /// One graph file.
    Single(PathBuf),
}

pub(crate) use kdsr_core::spec::onnx::suffixed;
use kdsr_core::spec::onnx::{SPLIT_IDE_SUFFIX, SPLIT_SR_SUFFIX, split_paths, split_prefix};

/// What `path` names: a split prefix, either file of a pair, one `.onnx` file (with or
/// without the extension), or a folder holding one model ([`locate_in_dir`]).
pub(crate) fn locate(path: &Path) -> Result<Located> {
    if path.is_dir() {
        return locate_in_dir(path);
    }
    if path.is_file() {
        if let Some(prefix) = split_prefix(path) {
            return Ok(Located::Split(prefix));
        }
        return Ok(Located::Single(path.to_path_buf()));
    }
    let (ide, sr) = split_paths(path);
    if ide.is_file() || sr.is_file() {
        return Ok(Located::Split(path.to_path_buf()));
    }
    let single = suffixed(path, ".onnx");
    if single.is_file() {
        return Ok(Located::Single(single));
    }
    Err(Error::model(
        path,
        format!(
            "no model here: looked for the file, the split pair {} + {}, and {}",
            ide.display(),
            sr.display(),
            single.display()
        ),
    ))
}

/// The one model in folder `dir` (a split pair preferred over single graphs).
fn locate_in_dir(dir: &Path) -> Result<Located> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::model(dir, format!("cannot list the folder: {e}")))?;
    let mut names: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "onnx") && p.is_file())
        .collect();
    names.sort();
    let pairs: Vec<PathBuf> = names
        .iter()
        .filter_map(|p| {
            p.to_str()?
                .strip_suffix(SPLIT_IDE_SUFFIX)
                .map(PathBuf::from)
        })
        .filter(|prefix| split_paths(prefix).1.is_file())
        .collect();
    let singles: Vec<&PathBuf> = names.iter().filter(|p| split_prefix(p).is_none()).collect();
    match (pairs.as_slice(), singles.as_slice()) {
        ([prefix], _) => Ok(Located::Split(prefix.clone())),
        ([], [single]) => Ok(Located::Single((*single).clone())),
        ([], []) => Err(Error::model(
            dir,
            "no model in this folder (no PREFIX-ide.onnx + PREFIX-sr.onnx pair and no .onnx \
             file); export one with `converter export`, or pass -m FILE",
        )),
        _ => Err(Error::model(
            dir,
            format!(
                "several models in this folder ({}); pass one with -m",
                pairs
                    .iter()
                    .map(|p| format!("{} (split)", p.display()))
                    .chain(singles.iter().map(|p| p.display().to_string()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap_or(Path::new("."))).ok();
        std::fs::write(p, b"x").ok();
    }

    #[test]
    fn the_search_order_is_m_then_env_then_beside_then_share_then_repo() {
        let t = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = t.path();
        let exe = root.join("repo/target/release/kdsr-edge");
        touch(&exe);
        touch(&root.join("repo/Cargo.toml"));
        touch(&root.join("repo/models/edge/m-ide.onnx"));
        touch(&root.join("repo/models/edge/m-sr.onnx"));
        let name = Some("edge/m");
        let r = |e: Option<&Path>| resolve_with(None, name, e, Some(&exe));
        let found = |r: Resolved| match r.found {
            Found::Path(p) => p,
            Found::Embedded => PathBuf::from("<embedded>"),
        };
        // Repository (found from the executable's path).
        let got = r(None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got.how, "the repository's models/");
        assert_eq!(found(got), root.join("repo/models/edge/m"));
        // A bare name one and two folders down (`-n m`, `-n c`).
        let got = resolve_with(None, Some("m"), None, Some(&exe)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(found(got), root.join("repo/models/edge/m"));
        touch(&root.join("repo/models/edge/camera/c.onnx"));
        let got = resolve_with(None, Some("c"), None, Some(&exe)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(found(got), root.join("repo/models/edge/camera/c"));
        // Installed layout beats the repository.
        touch(&root.join("repo/target/share/kdsr/models/m.onnx"));
        let got = r(None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got.how, "installed layout");
        // Beside the executable beats both.
        touch(&root.join("repo/target/release/m-ide.onnx"));
        let got = r(None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got.how, "beside the executable");
        assert_eq!(found(got), root.join("repo/target/release/m"));
        // -m beats everything, exists or not.
        let got = resolve_with(Some(Path::new("x")), name, None, Some(&exe))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (got.how.clone(), found(got)),
            ("-m".to_owned(), PathBuf::from("x"))
        );
        // KDSR_MODEL applies to the default name only (-n names another model).
        let got = resolve_with(None, None, Some(Path::new("y")), Some(&exe))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (got.how.clone(), found(got)),
            (ENV_VAR.to_owned(), PathBuf::from("y"))
        );
    }

    #[test]
    fn the_installed_layout_finds_bare_names_in_its_folders() {
        // The .deb's layout: /usr/bin/kdsr-edge, /usr/share/kdsr/models/edge/camera/….
        let t = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let usr = t.path().join("usr");
        let exe = usr.join("bin/kdsr-edge");
        touch(&exe);
        let models = usr.join("share/kdsr/models");
        touch(&models.join("edge/camera/c-int8-ide.onnx"));
        touch(&models.join("edge/camera/c-int8-sr.onnx"));
        touch(&models.join("edge/e.onnx"));
        for (name, want) in [
            ("c-int8", "edge/camera/c-int8"),
            ("edge/camera/c-int8", "edge/camera/c-int8"),
            ("e", "edge/e"),
        ] {
            let got = resolve_with(None, Some(name), None, Some(&exe))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(got.how, "installed layout", "{name}");
            match got.found {
                // `bin/../share/…`: compare the folders with the `..` resolved.
                Found::Path(p) => {
                    let w = models.join(want);
                    let dir = |q: &Path| q.parent().and_then(|d| d.canonicalize().ok());
                    assert_eq!((dir(&p), p.file_name()), (dir(&w), w.file_name()), "{name}");
                }
                Found::Embedded => panic!("{name}: embedded"),
            }
        }
    }

    #[test]
    fn a_missing_model_lists_every_place_searched() {
        let t = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let exe = t.path().join("bin/kdsr-edge");
        let e = resolve_with(None, Some("edge/nope"), None, Some(&exe))
            .err()
            .unwrap_or_else(|| panic!("found a model that does not exist"))
            .to_string();
        for p in search_places("edge/nope", Some(&exe)) {
            assert!(e.contains(&p.1.display().to_string()), "{e}");
        }
        assert!(e.contains("KDSR_MODEL") && e.contains("-m"), "{e}");
    }
}
