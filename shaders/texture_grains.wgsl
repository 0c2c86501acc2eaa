// Granular swell kernel of the Auralis texture pre-renderer.
//
// Runs after the pad kernel and adds into its output. One invocation handles one
// frame: a binary search over the grains (sorted by start) finds the first that
// may overlap the frame, then every overlapping grain adds its Hann-windowed sine
// sin²(π i / len) · sin(2π phase(i)). The math is the CPU path's
// (plugin/src/prerender/cpu.rs); constants come from `params` and `WG_SIZE`.
// `common.wgsl` (the uniform, `sin_cycles`, `phase_to_cycles`) is prepended to it.

// ---- Bindings ---------------------------------------------------------------

// Rust: `texture::Grain`.
struct Grain {
    start: u32,
    frames: u32,
    inc: u32,
    phase0: u32,
    half_inv_frames: f32,
    gain_l: f32,
    gain_r: f32,
    pad0: u32,
}

// binding 1: grains, sorted by start frame
@group(0) @binding(1) var<storage, read> grains: array<Grain>;
// binding 2: planar stereo output (the pad kernel's result), added to in place
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

// ---- Helpers ----------------------------------------------------------------

// Index of the first grain whose start is >= `frame` (grains sorted by start).
fn lower_bound(count: u32, frame: u32) -> u32 {
    var lo = 0u;
    var hi = count;
    while (lo < hi) {
        let mid = (lo + hi) / 2u;
        if (grains[mid].start < frame) {
            lo = mid + 1u;
        } else {
            hi = mid;
        }
    }
    return lo;
}

// ---- Entry point ------------------------------------------------------------

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = gid.x + gid.y * params.row_frames;
    if (n >= params.frames || params.frames + n >= arrayLength(&out)) {
        return;
    }
    let count = min(params.grain_count, arrayLength(&grains));
    // A grain overlapping frame n starts after n - max_grain_frames.
    let earliest = select(0u, n + 1u - params.max_grain_frames, n + 1u > params.max_grain_frames);
    var l = out[n];
    var r = out[params.frames + n];
    for (var k = lower_bound(count, earliest); k < count; k++) {
        let g = grains[k];
        if (g.start > n) {
            break;
        }
        let i = n - g.start;
        if (i >= g.frames) {
            continue;
        }
        let w = sin_cycles(f32(i) * g.half_inv_frames);
        let v = w * w * sin_cycles(phase_to_cycles(g.inc * i + g.phase0));
        l += v * g.gain_l;
        r += v * g.gain_r;
    }
    out[n] = l;
    out[params.frames + n] = r;
}
