//! The `auralis-render` binary: byte-identical output for the same arguments, a
//! readable WAV of the requested length, and clear errors (never a panic) for bad
//! arguments.

pub mod common;

use common::scratch;
use std::path::Path;
use std::process::{Command, Output};

fn render(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_auralis-render"))
        .args(args)
        .output()
        .expect("auralis-render runs")
}

#[test]
fn thread_count_does_not_change_a_byte() {
    let files: Vec<_> = ["1", "2", "5"]
        .into_iter()
        .map(|threads| {
            let out = scratch(&format!("threads-{threads}.wav"));
            let o = render(&[
                "--threads",
                threads,
                "--seconds",
                "40",
                "--sample-rate",
                "16000",
                "--out",
                out.to_str().expect("utf-8 path"),
            ]);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            std::fs::read(&out).expect("the file was written")
        })
        .collect();
    assert!(files.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn same_arguments_give_identical_files() {
    let a = scratch("a.wav");
    let b = scratch("b.wav");
    let c = scratch("c.wav");
    for (out, seed) in [(&a, "7"), (&b, "7"), (&c, "8")] {
        let o = render(&[
            "--seed",
            seed,
            "--preset",
            "bright",
            "--seconds",
            "20",
            "--sample-rate",
            "22050",
            "--out",
            out.to_str().expect("utf-8 path"),
        ]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{stderr}");
        let last = stderr.lines().last().unwrap_or_default();
        assert!(last.ends_with("x real time"), "last line: {last}");
    }
    let (fa, fb, fc) = (
        std::fs::read(&a).unwrap(),
        std::fs::read(&b).unwrap(),
        std::fs::read(&c).unwrap(),
    );
    assert!(fa == fb, "same arguments, different files");
    assert!(fa != fc, "different seeds, same file");

    let reader = hound::WavReader::open(&a).expect("valid WAV");
    let spec = reader.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (2, 22_050, 24)
    );
    assert_eq!(reader.duration(), 20 * 22_050);
}

#[test]
fn overrides_and_formats_work() {
    let out = scratch("f32.wav");
    let o = render(&[
        "--preset",
        "sleep",
        "--key",
        "Eb",
        "--mode",
        "phrygian",
        "--bpm",
        "45",
        "--intensity",
        "0.2",
        "--seconds",
        "3",
        "--format",
        "f32",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut reader = hound::WavReader::open(&out).expect("valid WAV");
    assert_eq!(reader.spec().sample_format, hound::SampleFormat::Float);
    let samples: Vec<f32> = reader.samples::<f32>().map(Result::unwrap).collect();
    assert!(samples.iter().all(|x| x.is_finite() && x.abs() <= 1.0));
}

#[test]
fn bad_arguments_are_refused_clearly() {
    let out = scratch("never.wav");
    let out = out.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--preset", "loud", "--out", out], "focus"),
        (&["--seconds", "-3", "--out", out], "seconds"),
        (&["--seconds", "nan", "--out", out], "seconds"),
        (&["--sample-rate", "4000", "--out", out], "sample-rate"),
        (&["--bpm", "1000", "--out", out], "bpm"),
        (&["--intensity", "1.5", "--out", out], "intensity"),
        (&["--key", "H", "--out", out], "key"),
        (&["--mode", "locrian", "--out", out], "mode"),
        (&["--texture", "maybe", "--out", out], "texture"),
        (&["--start-beats", "-1", "--out", out], "start-beats"),
        (&["--start-beats", "inf", "--out", out], "start-beats"),
        (
            &[
                "--seconds",
                "86400",
                "--sample-rate",
                "768000",
                "--out",
                out,
            ],
            "4 GiB",
        ),
        (
            &["--out", "/nonexistent-dir/x.wav", "--seconds", "1"],
            "cannot create",
        ),
        (&["--seconds", "1"], "--out"),
    ];
    for (args, needle) in cases {
        let o = render(args);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
        assert!(
            stderr.contains(needle),
            "{args:?}: {stderr:?} lacks {needle:?}"
        );
    }
    assert!(!Path::new(out).exists());
}

#[test]
fn a_failed_render_keeps_the_old_file() {
    let out = scratch("keep.wav");
    std::fs::write(&out, b"precious").unwrap();
    let o = render(&["--bpm", "0", "--out", out.to_str().unwrap()]);
    assert!(!o.status.success());
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
}

#[test]
fn the_texture_layer_can_be_switched_off() {
    let args = |out: &Path, texture: &str| {
        let o = render(&[
            "--seed",
            "3",
            "--seconds",
            "6",
            "--sample-rate",
            "8000",
            "--texture",
            texture,
            "--out",
            out.to_str().expect("utf-8 path"),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read(out).expect("written")
    };
    let off_a = args(&scratch("off_a.wav"), "off");
    let off_b = args(&scratch("off_b.wav"), "off");
    let on = args(&scratch("on.wav"), "on");
    assert!(
        off_a == off_b,
        "texture off: same arguments, different files"
    );
    assert!(on != off_a, "the texture changes nothing");
}

#[test]
fn a_bad_renderer_setting_is_refused_clearly() {
    let out = scratch("bad_renderer.wav");
    let o = Command::new(env!("CARGO_BIN_EXE_auralis-render"))
        .args(["--seconds", "1", "--out", out.to_str().expect("utf-8 path")])
        .env("AURALIS_RENDERER", "cuda")
        .output()
        .expect("auralis-render runs");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(stderr.contains("AURALIS_RENDERER"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!out.exists());
}

#[test]
fn a_piece_code_renders_the_piece_it_names_and_a_bad_one_is_refused() {
    let by_code = scratch("code.wav");
    let by_flags = scratch("flags.wav");
    let code = "au1-7-bright-fs-lydian-72-40";
    let o = render(&[
        "--code",
        code,
        "--seconds",
        "12",
        "--sample-rate",
        "16000",
        "--out",
        by_code.to_str().expect("utf-8 path"),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("code {code})")), "{stderr}");
    let o = render(&[
        "--seed",
        "7",
        "--preset",
        "bright",
        "--key",
        "F#",
        "--bpm",
        "72",
        "--intensity",
        "0.4",
        "--seconds",
        "12",
        "--sample-rate",
        "16000",
        "--out",
        by_flags.to_str().expect("utf-8 path"),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("code {code})")),
        "the same piece: {stderr}"
    );
    assert!(
        std::fs::read(&by_code).unwrap() == std::fs::read(&by_flags).unwrap(),
        "the code and the flags it stands for give different files"
    );

    for (bad, says) in [
        (
            "au1-7-bright-fs-lydian-999-40",
            "bpm must be between 20 and 300",
        ),
        ("au1-7-loud-fs-lydian-72-40", "unknown preset \"loud\""),
        ("au9-7-bright-fs-lydian-72-40", "version \"au9\""),
    ] {
        let out = scratch("bad-code.wav");
        let o = render(&["--code", bad, "--out", out.to_str().expect("utf-8 path")]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{bad} was accepted");
        assert!(stderr.contains(says), "{bad}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let out = scratch("both.wav");
    let o = render(&[
        "--code",
        code,
        "--seed",
        "3",
        "--out",
        out.to_str().expect("utf-8 path"),
    ]);
    assert!(!o.status.success(), "--code with --seed was accepted");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("cannot be used with"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
