//! Release builds embed the editor (`ui/`) in the binary: this script lists its files into a
//! table of `include_bytes!` that `server/http/ui.rs` includes. Debug builds read `ui/` from
//! disk instead (so editing JavaScript needs no rebuild) and get an empty table, unless built
//! with `SLUICE_EMBED_UI=1`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo::rustc-check-cfg=cfg(sluice_embed_ui)");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("ui_files.rs");
    // `SLUICE_EMBED_UI=1` embeds in any profile, to test the release path without a release build.
    println!("cargo::rerun-if-env-changed=SLUICE_EMBED_UI");
    let release = std::env::var("PROFILE").as_deref() == Ok("release")
        || std::env::var("SLUICE_EMBED_UI").as_deref() == Ok("1");
    let mut table = String::from("pub static FILES: &[(&str, &[u8])] = &[\n");
    if release {
        println!("cargo::rustc-cfg=sluice_embed_ui");
        println!("cargo::rerun-if-changed=ui");
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
        let mut files = Vec::new();
        walk(&root, &mut files);
        files.sort();
        for file in files {
            let rel = file
                .strip_prefix(&root)
                .expect("inside ui/")
                .to_string_lossy()
                .replace('\\', "/");
            // Every directory level, so new files are picked up too.
            if let Some(dir) = file.parent() {
                println!("cargo::rerun-if-changed={}", dir.display());
            }
            writeln!(
                table,
                "    ({rel:?}, include_bytes!({:?})),",
                file.display().to_string()
            )
            .expect("write");
        }
    } else {
        println!("cargo::rerun-if-changed=build.rs");
    }
    table.push_str("];\n");
    std::fs::write(&out, table).expect("write ui_files.rs");
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out);
        } else if !path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            out.push(path);
        }
    }
}
