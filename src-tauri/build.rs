include!("src/command_names.rs");

fn main() {
    // tauri-build prints its own rerun-if-changed lines, which turn off cargo's default
    // "any file" tracking; the command list comes in through include!, so name it.
    println!("cargo:rerun-if-changed=src/command_names.rs");
    let attrs = tauri_build::Attributes::new()
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(e) = tauri_build::try_build(attrs) {
        // build scripts report through stderr and a non-zero exit; there is no caller to return to
        eprintln!("tauri-build failed: {e:#}");
        std::process::exit(1);
    }
}
