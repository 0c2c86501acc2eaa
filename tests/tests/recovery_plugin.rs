//! The recovery rows of DESIGN §7 whose faults live in the plugin, through a real
//! CLAP host. The host loads the plugin into its own process and the texture
//! pre-renderer reads `AURALIS_FAULTS` and `AURALIS_RENDERER` when the plugin is
//! activated, so each run happens in a child process of this test binary with
//! its settings in the environment (debug builds read the faults). Each test
//! checks the documented recovery by what a listener hears: the music goes on,
//! finite, never silent, without a step the music does not make; where the
//! recovery promises the same music, the samples are compared.

use std::path::PathBuf;
use std::process::Command;

use auralis::prerender::validate::error_db;
use auralis_tests::clap_host::{max_diff, Ev, Plugin};
use auralis_tests::signal::max_step;

/// Set in a child process: the file to write its render to.
const CHILD_OUT: &str = "AURALIS_RECOVERY_OUT";
/// Sample rate of every render here.
const SAMPLE_RATE: f64 = 8_000.0;
/// Seconds rendered: at 300 BPM a phrase lasts 6.4 s, so two phrases and the
/// start of a third.
const SECONDS: f64 = 14.0;
/// Parameter changes at the start of each third of a render.
type Changes<'a> = [&'a [(&'a str, f64)]; 3];
/// No parameter changes.
const NONE: Changes<'static> = [&[], &[], &[]];

/// CLAP's normalised value of a BPM (20..300).
fn bpm(v: f64) -> f64 {
    (v - 20.0) / 280.0
}

/// Renders [`SECONDS`] of the plugin at 300 BPM (internal tempo), offline (every
/// texture waited for) or in real time (never waiting), in three equal parts with
/// the parameter changes of `changes[i]` at the start of part `i`.
fn render(offline: bool, changes: Changes<'_>) -> [Vec<f32>; 2] {
    let mut plugin = Plugin::new();
    let setup = [
        Ev::Param(plugin.param("Tempo source").id, 1.0, 0),
        Ev::Param(plugin.param("BPM").id, bpm(300.0), 0),
    ];
    plugin.activate(SAMPLE_RATE, 512, offline);
    plugin.render(1, 1, &setup, None);
    let third = (SECONDS * SAMPLE_RATE / 3.0) as usize;
    let mut out = [Vec::new(), Vec::new()];
    for part in changes {
        let events: Vec<Ev> = part
            .iter()
            .map(|(name, value)| Ev::Param(plugin.param(name).id, *value, 0))
            .collect();
        let [l, r] = plugin.render(third, 512, &events, None);
        for (name, value) in part {
            let id = plugin.param(name).id;
            assert_eq!(plugin.value(id), *value, "{name}");
        }
        out[0].extend(l);
        out[1].extend(r);
    }
    out
}

/// In a child process (see [`child`]): renders as [`render`] and writes both
/// channels to the file the parent named. Returns `false` in the parent.
fn render_in_child(offline: bool, changes: Changes<'_>) -> bool {
    let Some(out) = std::env::var_os(CHILD_OUT) else {
        return false;
    };
    let [left, right] = render(offline, changes);
    let bytes: Vec<u8> = left
        .iter()
        .chain(&right)
        .flat_map(|x| x.to_le_bytes())
        .collect();
    std::fs::write(out, bytes).expect("write the render");
    true
}

/// Runs the test `name` of this binary in a child process with `env` (and no
/// other pre-renderer variable), and returns the render it wrote.
fn child(name: &str, env: &[(&str, &str)]) -> [Vec<f32>; 2] {
    let out = out_file(name, env);
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary"));
    cmd.args([name, "--exact", "--nocapture", "--test-threads", "1"])
        .env_remove("AURALIS_FAULTS")
        .env_remove("AURALIS_RENDERER")
        .env_remove("AURALIS_GPU_COOLDOWN_S")
        .env(CHILD_OUT, &out);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let output = cmd.output().expect("run the child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child {name} {env:?}: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let bytes = std::fs::read(&out).expect("the child's render");
    std::fs::remove_file(&out).expect("remove the child's render");
    let samples: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let (left, right) = samples.split_at(samples.len() / 2);
    [left.to_vec(), right.to_vec()]
}

/// A file for the render of one child of this process.
fn out_file(name: &str, env: &[(&str, &str)]) -> PathBuf {
    let tag: String = env
        .iter()
        .flat_map(|(k, v)| [*k, *v])
        .collect::<Vec<_>>()
        .join("-")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    std::env::temp_dir().join(format!(
        "auralis-recovery-{}-{name}-{tag}.f32",
        std::process::id()
    ))
}

/// The largest step of both channels.
fn music_step(music: &[Vec<f32>; 2]) -> f32 {
    max_step(&music[0]).max(max_step(&music[1]))
}

/// The music goes on: finite and within full scale, no silent 100 ms after the
/// first second, and no step beyond `music_step` (the undisturbed music's own
/// largest step) with a margin.
fn assert_music_goes_on(out: &[Vec<f32>; 2], music_step: f32) {
    let window = (SAMPLE_RATE / 10.0) as usize;
    for (c, channel) in out.iter().enumerate() {
        assert_eq!(channel.len(), (SECONDS * SAMPLE_RATE) as usize / 3 * 3);
        assert!(
            channel.iter().all(|x| x.is_finite() && x.abs() <= 1.0),
            "channel {c}: not finite or beyond full scale"
        );
        for (i, w) in channel[SAMPLE_RATE as usize..].chunks(window).enumerate() {
            let rms = (w.iter().map(|x| x * x).sum::<f32>() / w.len() as f32).sqrt();
            assert!(
                rms > 1e-4,
                "channel {c}: silent 100 ms at {:.1} s",
                1.0 + i as f64 / 10.0
            );
        }
        let step = max_step(channel);
        assert!(
            step <= music_step * 1.25 + 1e-3,
            "channel {c}: a step of {step} against the music's own {music_step}"
        );
    }
}

/// The clean offline render on the CPU, from a child process.
fn clean_cpu_render() -> [Vec<f32>; 2] {
    child(
        "the_clean_reference_is_sound_music",
        &[("AURALIS_RENDERER", "cpu")],
    )
}

/// The reference the others are compared with (and, in a child, its render).
#[test]
fn the_clean_reference_is_sound_music() {
    if render_in_child(true, NONE) {
        return;
    }
    let clean = clean_cpu_render();
    assert_music_goes_on(&clean, music_step(&clean));
}

/// Row "synthesis error → retry simplified → silence": every render attempt
/// fails, every phrase's texture is silence, and the real-time pad carries the
/// music.
#[test]
fn a_synthesis_error_on_every_attempt_leaves_the_pad_playing() {
    if render_in_child(true, NONE) {
        return;
    }
    let env = [
        ("AURALIS_RENDERER", "cpu"),
        ("AURALIS_FAULTS", "render_error"),
    ];
    let failing = child(
        "a_synthesis_error_on_every_attempt_leaves_the_pad_playing",
        &env,
    );
    let clean = clean_cpu_render();
    assert_music_goes_on(&failing, music_step(&clean));
    // Without its texture the music is not the same: the fault was real.
    assert!(
        max_diff(&failing[0], &clean[0]) > 1e-3,
        "the fault changed nothing"
    );
}

/// Row "invalid audio", in the pre-renderer: textures with NaN are rejected by
/// validation and rendered again (simpler) or replaced by silence; nothing
/// invalid is heard.
#[test]
fn invalid_textures_are_rejected_and_never_heard() {
    if render_in_child(true, NONE) {
        return;
    }
    let env = [
        ("AURALIS_RENDERER", "cpu"),
        ("AURALIS_FAULTS", "render_nan:0.5"),
    ];
    let out = child("invalid_textures_are_rejected_and_never_heard", &env);
    assert_music_goes_on(&out, music_step(&clean_cpu_render()));
}

/// Row "GPU OOM → clear → CPU fallback": the GPU runs out of memory on every
/// use; the pre-renderer releases it and renders on the CPU, and not a phrase is
/// lost: the bounce is the CPU's, sample for sample.
#[test]
fn gpu_out_of_memory_falls_back_to_the_cpu_and_loses_no_phrase() {
    if render_in_child(true, NONE) {
        return;
    }
    if auralis::prerender::gpu::test_context().is_none() {
        return;
    }
    let env = [("AURALIS_RENDERER", "gpu"), ("AURALIS_FAULTS", "gpu_oom")];
    let oom = child(
        "gpu_out_of_memory_falls_back_to_the_cpu_and_loses_no_phrase",
        &env,
    );
    let cpu = clean_cpu_render();
    assert_eq!(
        max_diff(&oom[0], &cpu[0]),
        0.0,
        "left differs from the CPU's"
    );
    assert_eq!(
        max_diff(&oom[1], &cpu[1]),
        0.0,
        "right differs from the CPU's"
    );
}

/// Row "GPU OOM", its sibling device loss: the GPU device is destroyed under the
/// first phrase; that phrase is rendered again on the CPU, the GPU is acquired
/// anew for the next ones, and the bounce is the CPU's to within −60 dBFS (the
/// two paths' documented agreement): no phrase lost.
#[test]
fn a_lost_gpu_device_costs_no_phrase() {
    if render_in_child(true, NONE) {
        return;
    }
    if auralis::prerender::gpu::test_context().is_none() {
        return;
    }
    let env = [
        ("AURALIS_RENDERER", "gpu"),
        ("AURALIS_FAULTS", "device_lost@0s"),
        ("AURALIS_GPU_COOLDOWN_S", "0"),
    ];
    let lost = child("a_lost_gpu_device_costs_no_phrase", &env);
    let cpu = clean_cpu_render();
    for c in 0..2 {
        let db = error_db(&lost[c], &cpu[c]);
        assert!(
            db < -60.0,
            "channel {c}: {db:.1} dBFS from the CPU's render"
        );
    }
}

/// Row "system overload → adaptive quality", the user's lever: the quality pin
/// set to overload (the phrase in hand loops, with its texture) across a phrase
/// boundary, then released; the music never stops or breaks, and while pinned it
/// is not the music that would have followed.
#[test]
fn pinning_overload_keeps_the_music_going() {
    // Overload is the fifth choice (auto, normal, high load, critical, overload).
    if render_in_child(true, [&[], &[("Quality", 4.0)], &[("Quality", 0.0)]]) {
        return;
    }
    let env = [("AURALIS_RENDERER", "cpu")];
    let pinned = child("pinning_overload_keeps_the_music_going", &env);
    let clean = clean_cpu_render();
    assert_music_goes_on(&pinned, music_step(&clean));
    let third = pinned[0].len() / 3;
    assert_eq!(
        max_diff(&pinned[0][..third], &clean[0][..third]),
        0.0,
        "the same music until the pin"
    );
    assert!(
        max_diff(&pinned[0][third..2 * third], &clean[0][third..2 * third]) > 1e-3,
        "the pin changed nothing"
    );
}
