//! `cargo xtask form`: does the music hold up over half an hour? Renders each
//! preset offline and prints what long-form listening depends on: loudness range
//! and integrated loudness (EBU R 128), true peak, the chord lengths in bars, the
//! sections, layer sets and keys heard, the range of the spectral centroid over 10 s
//! windows, and a self-similarity image whose blocks are the sections.
//!
//! The self-similarity matrix is Foote's (*Visualizing Music and Audio using
//! Self-Similarity*, 1999): one feature vector per 5 s window (log energies in
//! 24 log-spaced bands, each band standardised over the piece), the cosine of
//! every pair of windows as a grey level.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use auralis::compose::form::chord_lengths;
use auralis::compose::presets::{preset, PRESETS};
use auralis::compose::{Composer, Phrase, Preset};
use auralis::engine::{EngineConfig, TextureSetting};
use auralis::offline::{default_threads, OfflineRenderer, BLOCK_FRAMES};
use auralis::render::RenderMode;
use ebur128::{EbuR128, Mode};
use realfft::RealFftPlanner;

use crate::flags::Flags;

const USAGE: &str =
    "usage: cargo xtask form [--minutes M] [--preset NAME]... [--seed N] [--out DIR]

  renders M minutes (default 30) of each preset (or of those named) with seed N
  (default 1) and prints loudness range, integrated loudness, true peak, chord
  lengths, sections, layer sets and the spectral centroid's range; writes a
  self-similarity PNG per preset to DIR (default target/form)";

/// Sample rate of the renders.
const SAMPLE_RATE: u32 = 48_000;
/// FFT size of the spectral features.
const FFT: usize = 4096;
/// Seconds per spectral-centroid window.
const CENTROID_WINDOW_S: usize = 10;
/// Seconds per self-similarity window.
const SIMILARITY_WINDOW_S: usize = 5;
/// Bands of the self-similarity features.
const BANDS: usize = 24;
/// Lowest and highest band edge, in hertz.
const BAND_RANGE_HZ: (f32, f32) = (40.0, 16_000.0);

/// Loudness range wanted, in LU.
const LRA_GOAL: (f64, f64) = (3.0, 8.0);
/// Integrated loudness wanted, in LUFS.
const LUFS_GOAL: (f64, f64) = (-21.0, -15.0);
/// Highest true peak wanted, in dBTP.
const TRUE_PEAK_GOAL_DB: f64 = -1.0;
/// Largest share one chord length may have.
const CHORD_LENGTH_MAX_SHARE: f64 = 0.7;

/// Runs `cargo xtask form`.
///
/// # Errors
/// Bad flags, a failed render or image, or any figure outside its goal (after
/// every preset has been measured and printed).
pub fn form(args: &[String]) -> Result<()> {
    let mut minutes = 30.0;
    let mut seed = 1;
    let mut names = Vec::new();
    let mut out = crate::root().join("target/form");
    let mut flags = Flags::new(args, USAGE);
    while let Some(flag) = flags.next_flag()? {
        match flag {
            "--minutes" => minutes = flags.number(flag, 0.5, 600.0)?,
            "--seed" => seed = flags.number(flag, 0.0, 9.0e15)? as u64,
            "--preset" => names.push(preset(flags.value(flag)?)?),
            "--out" => out = PathBuf::from(flags.value(flag)?),
            other => return Err(flags.unknown(other)),
        }
    }
    let presets: Vec<&Preset> = if names.is_empty() {
        PRESETS.iter().collect()
    } else {
        names
    };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut misses = Vec::new();
    for p in presets {
        let report = measure(p, seed, minutes, &out)?;
        misses.extend(report.misses(p.name));
    }
    if !misses.is_empty() {
        bail!("figures outside their goals:\n  {}", misses.join("\n  "));
    }
    Ok(())
}

/// What `form` measured of one preset.
struct Report {
    lra: f64,
    lufs: f64,
    true_peak_db: f64,
    chord_lengths: BTreeMap<u32, usize>,
}

impl Report {
    /// The figures outside their goals, each as a line naming `name`.
    fn misses(&self, name: &str) -> Vec<String> {
        let mut misses = Vec::new();
        if !(LRA_GOAL.0..=LRA_GOAL.1).contains(&self.lra) {
            misses.push(format!("{name}: loudness range {:.1} LU", self.lra));
        }
        if !(LUFS_GOAL.0..=LUFS_GOAL.1).contains(&self.lufs) {
            misses.push(format!("{name}: integrated {:.1} LUFS", self.lufs));
        }
        if self.true_peak_db > TRUE_PEAK_GOAL_DB {
            misses.push(format!("{name}: true peak {:.1} dBTP", self.true_peak_db));
        }
        let total: usize = self.chord_lengths.values().sum();
        let most = self.chord_lengths.values().copied().max().unwrap_or(0);
        if self.chord_lengths.len() < 3 || most as f64 > CHORD_LENGTH_MAX_SHARE * total as f64 {
            misses.push(format!("{name}: chord lengths {:?}", self.chord_lengths));
        }
        misses
    }
}

/// Renders and measures `minutes` of `preset` with `seed`; prints the figures and
/// writes `<out>/<name>-self-similarity.png`.
fn measure(preset: &Preset, seed: u64, minutes: f64, out: &Path) -> Result<Report> {
    let frames = (minutes * 60.0 * f64::from(SAMPLE_RATE)) as usize;
    let started = std::time::Instant::now();
    let mut renderer = OfflineRenderer::with_threads(
        EngineConfig {
            sample_rate: SAMPLE_RATE as f32,
            seed,
            compose: preset.compose,
            levels: preset.levels,
            mode: RenderMode::Offline,
        },
        TextureSetting::FromEnv,
        default_threads(),
    )
    .context("building the engine")?;
    let mut meter = EbuR128::new(2, SAMPLE_RATE, Mode::I | Mode::LRA | Mode::TRUE_PEAK)
        .context("loudness meter")?;
    let mut spectra = Spectra::new();
    let mut done = 0;
    while done < frames {
        let (left, right) = renderer.next_block((frames - done).min(BLOCK_FRAMES));
        meter
            .add_frames_planar_f32(&[left, right])
            .context("loudness meter")?;
        spectra.add(left, right);
        done += left.len();
    }
    let rtf = minutes * 60.0 / started.elapsed().as_secs_f64();

    let lra = meter.loudness_range().context("loudness range")?;
    let lufs = meter.loudness_global().context("integrated loudness")?;
    let true_peak = (0..2)
        .map(|ch| meter.true_peak(ch))
        .collect::<Result<Vec<_>, _>>()
        .context("true peak")?
        .into_iter()
        .fold(0.0f64, f64::max);
    let true_peak_db = 20.0 * true_peak.log10();

    let phrases = composed(preset, seed, frames);
    let chord_lengths = chord_length_histogram(&phrases);
    let name = preset.name;
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "{name}: {minutes} min rendered at {rtf:.0}x real time"
    )?;
    writeln!(
        stdout,
        "{name}: loudness range {lra:.1} LU (goal {}-{}), integrated {lufs:.1} LUFS (goal -18 ± 3), true peak {true_peak_db:.1} dBTP (goal ≤ {TRUE_PEAK_GOAL_DB})",
        LRA_GOAL.0, LRA_GOAL.1
    )?;
    let total: usize = chord_lengths.values().sum();
    let shares: Vec<String> = chord_lengths
        .iter()
        .map(|(bars, n)| format!("{bars} bar(s) {:.0} %", 100.0 * *n as f64 / total as f64))
        .collect();
    writeln!(
        stdout,
        "{name}: {total} chords: {} (goal ≥ 3 lengths, none above 70 %)",
        shares.join(", ")
    )?;
    let (sections, layers) = sections_and_layers(&phrases);
    let layers: Vec<String> = layers
        .iter()
        .map(|(set, n)| format!("{set} ({n} phrases)"))
        .collect();
    writeln!(
        stdout,
        "{name}: {sections} sections; layer sets heard: {}",
        layers.join(", ")
    )?;
    let keys: BTreeSet<String> = phrases
        .iter()
        .map(|p| {
            let s = p.sounding_params();
            format!("{} {}", s.key, s.mode)
        })
        .collect();
    writeln!(
        stdout,
        "{name}: keys heard: {}",
        keys.into_iter().collect::<Vec<_>>().join(", ")
    )?;
    let (low, high) = spectra.centroid_range();
    writeln!(
        stdout,
        "{name}: spectral centroid over {CENTROID_WINDOW_S} s windows from {low:.0} Hz to {high:.0} Hz ({:.2} octaves)",
        (high / low).log2()
    )?;
    let png = out.join(format!("{name}-self-similarity.png"));
    spectra.write_self_similarity(&png)?;
    writeln!(stdout, "{name}: self-similarity in {}", png.display())?;
    Ok(Report {
        lra,
        lufs,
        true_peak_db,
        chord_lengths,
    })
}

/// The phrases the engine played in the first `frames` of `preset` with `seed`
/// (the same phrases: offline, nothing is degraded).
fn composed(preset: &Preset, seed: u64, frames: usize) -> Vec<Phrase> {
    let params = preset.compose;
    let phrase_s = params.phrase_beats() * 60.0 / f64::from(params.bpm);
    let count = (frames as f64 / f64::from(SAMPLE_RATE) / phrase_s).ceil() as u64;
    Composer::new(seed, params).sequence(count)
}

/// How many chords lasted how many bars ([`chord_lengths`]).
fn chord_length_histogram(phrases: &[Phrase]) -> BTreeMap<u32, usize> {
    let mut histogram = BTreeMap::new();
    for l in chord_lengths(phrases) {
        *histogram.entry(l).or_insert(0) += 1;
    }
    histogram
}

/// The number of sections and, for each layer set heard, its phrases.
fn sections_and_layers(phrases: &[Phrase]) -> (usize, BTreeMap<&'static str, usize>) {
    let sections: BTreeSet<u64> = phrases.iter().map(|p| p.form.section).collect();
    let mut layers = BTreeMap::new();
    for p in phrases {
        *layers.entry(p.form.layers.name()).or_insert(0) += 1;
    }
    (sections.len(), layers)
}

/// Spectral features of the mono sum, gathered block by block: the centroid of
/// each [`CENTROID_WINDOW_S`] window and the band energies of each
/// [`SIMILARITY_WINDOW_S`] window.
struct Spectra {
    fft: std::sync::Arc<dyn realfft::RealToComplex<f32>>,
    window: Vec<f32>,
    frame: Vec<f32>,
    scratch: Vec<f32>,
    spectrum: Vec<realfft::num_complex::Complex<f32>>,
    /// Band of each FFT bin (`BANDS` for bins outside every band).
    band_of_bin: Vec<usize>,
    /// Power-weighted frequency sum and power sum of the current centroid window.
    centroid_acc: (f64, f64),
    centroid_frames: usize,
    centroids: Vec<f64>,
    band_acc: [f64; BANDS],
    band_frames: usize,
    features: Vec<[f64; BANDS]>,
}

impl Spectra {
    fn new() -> Self {
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(FFT);
        let window = (0..FFT)
            .map(|i| 0.5 - 0.5 * (std::f32::consts::TAU * i as f32 / FFT as f32).cos())
            .collect();
        let bin_hz = SAMPLE_RATE as f32 / FFT as f32;
        let (lo, hi) = BAND_RANGE_HZ;
        let band_of_bin = (0..=FFT / 2)
            .map(|b| {
                let hz = b as f32 * bin_hz;
                if hz < lo || hz >= hi {
                    BANDS
                } else {
                    ((hz / lo).ln() / (hi / lo).ln() * BANDS as f32) as usize
                }
            })
            .collect();
        Self {
            spectrum: fft.make_output_vec(),
            scratch: Vec::with_capacity(FFT),
            frame: Vec::with_capacity(FFT),
            fft,
            window,
            band_of_bin,
            centroid_acc: (0.0, 0.0),
            centroid_frames: 0,
            centroids: Vec::new(),
            band_acc: [0.0; BANDS],
            band_frames: 0,
            features: Vec::new(),
        }
    }

    /// Adds a block of stereo samples.
    fn add(&mut self, left: &[f32], right: &[f32]) {
        for (l, r) in left.iter().zip(right) {
            self.frame.push(0.5 * (l + r));
            if self.frame.len() == FFT {
                self.analyse_frame();
                self.frame.clear();
            }
        }
    }

    fn analyse_frame(&mut self) {
        self.scratch.clear();
        self.scratch
            .extend(self.frame.iter().zip(&self.window).map(|(x, w)| x * w));
        // The lengths always match the plan, so the transform cannot fail.
        if self
            .fft
            .process(&mut self.scratch, &mut self.spectrum)
            .is_err()
        {
            return;
        }
        let bin_hz = f64::from(SAMPLE_RATE) / FFT as f64;
        for (b, c) in self.spectrum.iter().enumerate() {
            let power = f64::from(c.norm_sqr());
            self.centroid_acc.0 += power * b as f64 * bin_hz;
            self.centroid_acc.1 += power;
            if let Some(acc) = self.band_acc.get_mut(self.band_of_bin[b]) {
                *acc += power;
            }
        }
        let frames_in = |seconds: usize| (seconds * SAMPLE_RATE as usize).div_ceil(FFT);
        self.centroid_frames += 1;
        if self.centroid_frames >= frames_in(CENTROID_WINDOW_S) {
            let (f, p) = self.centroid_acc;
            if p > 0.0 {
                self.centroids.push(f / p);
            }
            self.centroid_acc = (0.0, 0.0);
            self.centroid_frames = 0;
        }
        self.band_frames += 1;
        if self.band_frames >= frames_in(SIMILARITY_WINDOW_S) {
            self.features.push(
                self.band_acc
                    .map(|e| (e / self.band_frames as f64 + 1e-12).log10()),
            );
            self.band_acc = [0.0; BANDS];
            self.band_frames = 0;
        }
    }

    /// The lowest and highest window centroid, in hertz.
    fn centroid_range(&self) -> (f64, f64) {
        let low = self.centroids.iter().copied().fold(f64::INFINITY, f64::min);
        let high = self.centroids.iter().copied().fold(0.0, f64::max);
        (low, high)
    }

    /// Writes the self-similarity matrix of the windows' features as a grey PNG
    /// (white: alike), each window two pixels wide.
    fn write_self_similarity(&self, path: &Path) -> Result<()> {
        let n = self.features.len();
        if n == 0 {
            bail!("too short for a self-similarity image (under {SIMILARITY_WINDOW_S} s)");
        }
        // Standardise each band over the piece, then normalise each vector.
        let mut z = self.features.clone();
        for band in 0..BANDS {
            let mean = z.iter().map(|f| f[band]).sum::<f64>() / n as f64;
            let var = z.iter().map(|f| (f[band] - mean).powi(2)).sum::<f64>() / n as f64;
            let sd = var.sqrt().max(1e-9);
            for f in &mut z {
                f[band] = (f[band] - mean) / sd;
            }
        }
        for f in &mut z {
            let norm = f.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-9);
            for x in f.iter_mut() {
                *x /= norm;
            }
        }
        const SCALE: usize = 2;
        let side = n * SCALE;
        let mut pixels = vec![0u8; side * side];
        for (i, a) in z.iter().enumerate() {
            for (j, b) in z.iter().enumerate() {
                let cos: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
                let grey = ((cos + 1.0) * 127.5).clamp(0.0, 255.0) as u8;
                for dy in 0..SCALE {
                    let row = (i * SCALE + dy) * side;
                    pixels[row + j * SCALE..row + (j + 1) * SCALE].fill(grey);
                }
            }
        }
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut encoder = png::Encoder::new(BufWriter::new(file), side as u32, side as u32);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        encoder
            .write_header()
            .and_then(|mut w| w.write_image_data(&pixels))
            .with_context(|| format!("writing {}", path.display()))
    }
}
