include!("src/command_names.rs");

fn main() {
    let attrs = tauri_build::Attributes::new()
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(e) = tauri_build::try_build(attrs) {
        // build scripts report through stderr and a non-zero exit; there is no caller to return to
        eprintln!("tauri-build failed: {e:#}");
        std::process::exit(1);
    }
}
