// Additive pad kernel of the Auralis texture pre-renderer.
//
// One invocation renders one output frame: it sums, for every voice whose span
// holds the frame, that voice's partials (fixed-point phase from the integer frame
// index plus the closed-form drift term), times the voice's envelope. The math is
// the CPU path's (plugin/src/prerender/texture.rs); constants come from `params`
// and the `WG_SIZE` override, never from literals duplicated here.
// `common.wgsl` (the uniform, `sin_cycles`, `phase_to_cycles`) is prepended to it.

// ---- Bindings ---------------------------------------------------------------

// Rust: `texture::Voice`.
struct Voice {
    start: u32,
    end: u32,
    first_partial: u32,
    partial_count: u32,
    inv_attack: f32,
    inv_release: f32,
    pad0: u32,
    pad1: u32,
}

// Rust: `texture::Partial`.
struct Partial {
    inc: u32,
    phase0: u32,
    drift_inc: u32,
    drift_phase0: u32,
    drift_cycles: f32,
    drift_c0: f32,
    gain_l: f32,
    gain_r: f32,
}

// binding 1: pad voices
@group(0) @binding(1) var<storage, read> voices: array<Voice>;
// binding 2: their partials
@group(0) @binding(2) var<storage, read> partials: array<Partial>;
// binding 3: planar stereo output, left in [0, frames), right in [frames, 2 frames)
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// ---- Helpers ----------------------------------------------------------------

// Linear attack and release ramps, multiplied and smoothed.
fn envelope(v: Voice, n: u32) -> f32 {
    let a = min(f32(n - v.start + 1u) * v.inv_attack, 1.0);
    let r = min(f32(v.end - n) * v.inv_release, 1.0);
    let e = a * r;
    return e * e * (3.0 - 2.0 * e);
}

// Phase of partial `p` at frame `m` from its voice start, in cycles.
fn partial_phase(p: Partial, m: u32) -> f32 {
    let theta = phase_to_cycles(p.drift_inc * m + p.drift_phase0);
    let d = p.drift_cycles * (p.drift_c0 - sin_cycles(theta + 0.25));
    return phase_to_cycles(p.inc * m + p.phase0) + (d - floor(d));
}

// ---- Entry point ------------------------------------------------------------

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = gid.x + gid.y * params.row_frames;
    if (n >= params.frames || params.frames + n >= arrayLength(&out)) {
        return;
    }
    let voice_count = min(params.voice_count, arrayLength(&voices));
    let partial_len = arrayLength(&partials);
    var l = 0.0;
    var r = 0.0;
    for (var v = 0u; v < voice_count; v++) {
        let voice = voices[v];
        if (n < voice.start || n >= voice.end) {
            continue;
        }
        let m = n - voice.start;
        let last = min(voice.first_partial + voice.partial_count, partial_len);
        var sl = 0.0;
        var sr = 0.0;
        for (var k = voice.first_partial; k < last; k++) {
            let p = partials[k];
            let s = sin_cycles(partial_phase(p, m));
            sl += p.gain_l * s;
            sr += p.gain_r * s;
        }
        let e = envelope(voice, n);
        l += e * sl;
        r += e * sr;
    }
    out[n] = l;
    out[params.frames + n] = r;
}
