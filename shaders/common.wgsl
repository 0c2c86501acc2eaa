// Shared prelude of the texture pre-renderer's kernels: the uniform both bind at
// binding 0 and the helpers both use. The Rust side prepends this file to each
// kernel (`gpu.rs`), so these definitions exist once.

// Sizes and shared constants (Rust: `gpu::ParamsUniform`).
struct Params {
    frames: u32,           // output frames
    voice_count: u32,      // voices in use (pad kernel)
    grain_count: u32,      // grains in use (grain kernel)
    max_grain_frames: u32, // longest grain (grain kernel)
    row_frames: u32,       // frames per dispatch row (2-D dispatch)
    phase_scale: f32,      // 2^-24: top 24 phase bits to cycles
    pad0: u32,
    pad1: u32,
    sin_lo: vec4<f32>,     // sine polynomial c1, c3, c5, c7
    sin_hi: vec4<f32>,     // c9, c11, unused, unused
}

override WG_SIZE: u32 = 64u;

// binding 0: sizes and constants
@group(0) @binding(0) var<uniform> params: Params;

// sin(2π x), x in cycles: reduce to a quarter cycle, then the shared polynomial
// (the same steps as the CPU path).
fn sin_cycles(x: f32) -> f32 {
    var r = x - floor(x + 0.5);
    if (r > 0.25) {
        r = 0.5 - r;
    } else if (r < -0.25) {
        r = -0.5 - r;
    }
    let r2 = r * r;
    let a = params.sin_lo;
    let b = params.sin_hi;
    return r * (a.x + r2 * (a.y + r2 * (a.z + r2 * (a.w + r2 * (b.x + r2 * b.y)))));
}

// A u32 fixed-point phase as cycles, from its top 24 bits (exact in f32).
fn phase_to_cycles(p: u32) -> f32 {
    return f32(p >> 8u) * params.phase_scale;
}

