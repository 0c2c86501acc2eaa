//! No GPU adapter: asked for the GPU (`AURALIS_RENDERER=gpu`) on a machine where
//! wgpu finds no adapter, `auralis-render` still renders the texture layer, on the
//! CPU, and writes exactly the file the CPU renderer writes.

pub mod common;

use std::path::Path;
use std::process::Command;

use auralis::prerender::gpu::{GpuContext, GpuError};
use common::scratch;

/// wgpu limited to a backend this platform does not have, and the Vulkan loader
/// pointed at no driver: no adapter can be found.
const NO_ADAPTER: [(&str, &str); 3] = [
    ("WGPU_BACKEND", "dx12"),
    ("VK_ICD_FILENAMES", "/nonexistent/icd.json"),
    ("VK_DRIVER_FILES", "/nonexistent/icd.json"),
];

/// Renders 8 s with the texture on, with `env` set; returns the file's bytes.
fn render(out: &Path, env: &[(&str, &str)]) -> Vec<u8> {
    let o = Command::new(env!("CARGO_BIN_EXE_auralis-render"))
        .args(["--seed", "3", "--seconds", "8", "--sample-rate", "16000"])
        .args(["--texture", "on", "--quiet", "--out"])
        .arg(out)
        .env_remove("AURALIS_FAULTS")
        .envs(env.iter().copied())
        .output()
        .expect("auralis-render runs");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{env:?}: {stderr}");
    std::fs::read(out).expect("the rendered file")
}

#[test]
fn without_a_gpu_adapter_the_texture_renders_on_the_cpu_unchanged() {
    // The environment given to the child really hides every adapter: the same
    // wgpu call in this process (its only test) finds none.
    for (k, v) in NO_ADAPTER {
        std::env::set_var(k, v);
    }
    let found = GpuContext::new().map(|gpu| gpu.adapter_name);
    assert!(
        matches!(found, Err(GpuError::NoAdapter(_))),
        "an adapter was found: {found:?}"
    );
    let cpu = render(&scratch("cpu.wav"), &[("AURALIS_RENDERER", "cpu")]);
    let mut env = NO_ADAPTER.to_vec();
    env.push(("AURALIS_RENDERER", "gpu"));
    let no_adapter = render(&scratch("no_adapter.wav"), &env);
    assert!(cpu.len() > 8 * 16_000 * 2 * 3, "a full 8 s file");
    assert!(
        cpu == no_adapter,
        "the fallback renders what the CPU renders"
    );
}
