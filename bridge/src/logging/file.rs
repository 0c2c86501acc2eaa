//! One daily log file, `<prefix>.<YYYY-MM-DD>.log` (the UTC date), that knows
//! whether it can be written and keeps trying when it cannot.
//!
//! It runs on its log file's writer thread (`tracing_appender::non_blocking`),
//! never on the audio path. Each line is written whole or not at all. A line that
//! cannot be written (a full disk, a directory that is gone and cannot be made
//! again, no permission) is dropped and counted, the file is closed, and the next
//! line opens it again: every line is a probe, so logging resumes by itself when
//! the cause goes away. The change each way is one console line, not one per line.
//! A log file (or its whole directory) removed or replaced while the bridge runs is
//! noticed at the next batch of lines and written again, directory included.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::calendar::{civil_from_days, DAY_S};

/// What the HTTP handlers read of one log file; only its writer changes it.
#[derive(Debug, Default)]
pub(super) struct FileHealth {
    failing: AtomicBool,
    failures: AtomicU64,
    /// Why the last line could not be written, while failing.
    error: Mutex<Option<String>>,
}

impl FileHealth {
    /// Whether the last line could not be written.
    pub(super) fn failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    /// Lines that could not be written since start.
    pub(super) fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Why the last line could not be written, while failing.
    pub(super) fn error(&self) -> Option<String> {
        self.error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_error(&self, error: Option<String>) {
        *self.error.lock().unwrap_or_else(PoisonError::into_inner) = error;
    }
}

/// The console line when a log file starts failing (logged at WARN).
pub(super) fn report_failing(error: &str) {
    tracing::warn!(
        %error,
        "cannot write logs to the log file; dropping its lines, and trying again with each"
    );
}

/// A daily log file with retention; see the module documentation.
#[derive(Debug)]
pub(super) struct DailyFile {
    dir: PathBuf,
    prefix: &'static str,
    /// Dated files kept, today's included.
    keep: usize,
    health: Arc<FileHealth>,
    file: Option<File>,
    /// The day (since the Unix epoch) whose file was last opened; retention runs
    /// when it changes.
    day: Option<u64>,
    /// Whether the next write checks that the path still names the open file: set
    /// by each flush, so once per batch of lines.
    check: bool,
    /// Lines lost since the file started failing.
    lost: u64,
}

impl DailyFile {
    /// A writer of `<prefix>.<date>.log` in `dir`. Opens today's file at once,
    /// applying retention, and answers why when it cannot (the file is then
    /// failing; the caller reports it once the logger is installed).
    pub(super) fn open(dir: &Path, prefix: &'static str, keep: usize) -> (Self, Option<String>) {
        let mut file = Self {
            dir: dir.to_owned(),
            prefix,
            keep,
            health: Arc::default(),
            file: None,
            day: None,
            check: false,
            lost: 0,
        };
        let day = day_of(SystemTime::now());
        let problem = match file.open_file(day) {
            Ok(f) => {
                file.file = Some(f);
                None
            }
            Err(e) => {
                let why = file.why(day, &e);
                file.failed(why.clone());
                Some(why)
            }
        };
        (file, problem)
    }

    /// Its state, shared with the readers.
    pub(super) fn health(&self) -> Arc<FileHealth> {
        Arc::clone(&self.health)
    }

    fn path(&self, day: u64) -> PathBuf {
        self.dir
            .join(format!("{}.{}.log", self.prefix, date_name(day)))
    }

    fn why(&self, day: u64, e: &io::Error) -> String {
        format!("{}: {e}", self.path(day).display())
    }

    /// Opens (creating the directory when it is missing) the file of `day`, and
    /// applies retention when the day changed.
    fn open_file(&mut self, day: u64) -> io::Result<File> {
        let path = self.path(day);
        let open = || OpenOptions::new().append(true).create(true).open(&path);
        let file = match open() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(&self.dir)?;
                open()
            }
            opened => opened,
        }?;
        if self.day != Some(day) {
            self.day = Some(day);
            self.prune();
        }
        Ok(file)
    }

    /// Removes the oldest dated files of this prefix beyond `keep`. Only regular
    /// files count: a link or a directory is never removed.
    fn prune(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| is_dated(n, self.prefix))
            .collect();
        // ISO dates sort as text.
        names.sort_unstable();
        let excess = names.len().saturating_sub(self.keep);
        for name in &names[..excess] {
            if let Err(e) = fs::remove_file(self.dir.join(name)) {
                tracing::warn!(file = name, error = %e, "cannot remove an old log file");
            }
        }
    }

    /// The open file for `day`: the same one unless the day changed, it failed
    /// last time, or (on a batch's first line) its path no longer names it.
    fn file_for(&mut self, day: u64) -> io::Result<&mut File> {
        let check = std::mem::take(&mut self.check);
        let file = match self.file.take() {
            Some(f) if self.day == Some(day) => {
                if !check || names(&self.path(day), &f) {
                    f
                } else {
                    tracing::warn!(
                        path = %self.path(day).display(),
                        "the log file was removed or replaced; writing it again"
                    );
                    self.open_file(day)?
                }
            }
            _ => self.open_file(day)?,
        };
        Ok(self.file.insert(file))
    }

    fn failed(&mut self, why: String) {
        self.file = None;
        self.lost += 1;
        self.health.failures.fetch_add(1, Ordering::Relaxed);
        self.health.set_error(Some(why));
        self.health.failing.store(true, Ordering::Relaxed);
    }
}

impl Write for DailyFile {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let day = day_of(SystemTime::now());
        match self.file_for(day).and_then(|f| write_whole(f, line)) {
            Ok(()) => {
                if self.health.failing() {
                    self.health.failing.store(false, Ordering::Relaxed);
                    self.health.set_error(None);
                    tracing::info!(
                        path = %self.path(day).display(),
                        lost = self.lost,
                        "the log file can be written again"
                    );
                    self.lost = 0;
                }
                Ok(line.len())
            }
            Err(e) => {
                let was_failing = self.health.failing();
                let why = self.why(day, &e);
                if !was_failing {
                    report_failing(&why);
                }
                self.failed(why);
                Err(e)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.check = true;
        self.file.as_mut().map_or(Ok(()), File::flush)
    }
}

/// Whether `path` still names the open `file` (not when it was removed, renamed
/// or replaced).
fn names(path: &Path, file: &File) -> bool {
    match (fs::metadata(path), file.metadata()) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Writes all of `line` or none of it: a write that fails half-way (a disk that
/// fills in the middle of a line) is cut back, so the file never holds half a
/// JSON line.
fn write_whole(file: &mut File, line: &[u8]) -> io::Result<()> {
    let mut done = 0;
    while done < line.len() {
        match file.write(&line[done..]) {
            Ok(0) => return Err(undo(file, done, io::ErrorKind::WriteZero.into())),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(undo(file, done, e)),
        }
    }
    Ok(())
}

/// Cuts the `written` bytes of a partly written line off the end of `file`, and
/// answers the error that stopped it.
fn undo(file: &File, written: usize, error: io::Error) -> io::Error {
    if written > 0 {
        if let Ok(m) = file.metadata() {
            // Best effort: when even this fails, the next line follows a torn one.
            let _ = file.set_len(m.len().saturating_sub(written as u64));
        }
    }
    error
}

/// The day of `t`, counted from the Unix epoch (UTC).
fn day_of(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / DAY_S)
}

/// `YYYY-MM-DD` of a day since the Unix epoch.
fn date_name(day: u64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Whether `name` is `<prefix>.<YYYY-MM-DD>.log`.
fn is_dated(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('.'))
        .and_then(|r| r.strip_suffix(".log"))
        .is_some_and(|date| {
            date.len() == 10
                && date.bytes().enumerate().all(|(i, b)| match i {
                    4 | 7 => b == b'-',
                    _ => b.is_ascii_digit(),
                })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("auralis-logfile-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn today() -> PathBuf {
        PathBuf::from(format!("t.{}.log", date_name(day_of(SystemTime::now()))))
    }

    #[test]
    fn dates_are_utc_calendar_days() {
        assert_eq!(date_name(0), "1970-01-01");
        let at = |s: u64| date_name(day_of(UNIX_EPOCH + Duration::from_secs(s)));
        assert_eq!(at(951_782_399), "2000-02-28");
        assert_eq!(at(951_782_400), "2000-02-29");
        assert_eq!(at(1_709_251_199), "2024-02-29");
        assert_eq!(at(1_735_689_599), "2024-12-31");
        assert_eq!(at(1_735_689_600), "2025-01-01");
        assert_eq!(at(4_107_542_400), "2100-03-01");
    }

    #[test]
    fn only_dated_files_of_the_prefix_are_log_files() {
        assert!(is_dated("errors.2026-12-02.log", "errors"));
        assert!(!is_dated("errors.2026-12-02.log.gz", "errors"));
        assert!(!is_dated("errors-old.2026-12-02.log", "errors"));
        assert!(!is_dated("errors.latest.log", "errors"));
        assert!(!is_dated("auralis-bridge.2026-12-02.log", "errors"));
    }

    #[test]
    fn retention_keeps_the_newest_files_and_never_a_link() {
        let dir = temp_dir("retention");
        for day in 1..=5 {
            fs::write(dir.join(format!("t.2019-01-0{day}.log")), "").unwrap();
        }
        fs::write(dir.join("t.notes.log"), "").unwrap();
        std::os::unix::fs::symlink("/dev/null", dir.join("t.2018-01-01.log")).unwrap();
        let (_file, problem) = DailyFile::open(&dir, "t", 3);
        assert_eq!(problem, None);
        let mut left: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let today = today().display().to_string();
        assert_eq!(
            left,
            [
                "t.2018-01-01.log",
                "t.2019-01-04.log",
                "t.2019-01-05.log",
                today.as_str(),
                "t.notes.log",
            ]
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_full_disk_is_counted_once_per_line_and_the_next_line_after_it_lands() {
        let dir = temp_dir("full");
        let path = dir.join(today());
        std::os::unix::fs::symlink("/dev/full", &path).unwrap();
        let (mut file, problem) = DailyFile::open(&dir, "t", 3);
        assert_eq!(problem, None, "/dev/full opens; only writes fail");
        let health = file.health();
        for _ in 0..3 {
            let e = file.write(b"{\"n\":1}\n").unwrap_err();
            assert_eq!(e.raw_os_error(), Some(28), "ENOSPC: {e}");
        }
        assert!(health.failing());
        assert_eq!(health.failures(), 3);
        let error = health.error().unwrap();
        assert!(error.contains("No space left on device"), "{error}");
        assert!(error.contains(&path.display().to_string()), "{error}");
        // Space again: the next line reopens the path, now a real file.
        fs::remove_file(&path).unwrap();
        file.write_all(b"{\"n\":2}\n").unwrap();
        file.flush().unwrap();
        assert!(!health.failing());
        assert_eq!(health.error(), None);
        assert_eq!(health.failures(), 3, "a counter: it stays");
        assert_eq!(fs::read_to_string(&path).unwrap(), "{\"n\":2}\n");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_removed_directory_is_made_again_at_the_next_batch() {
        let dir = temp_dir("removed");
        let (mut file, _) = DailyFile::open(&dir, "t", 3);
        file.write_all(b"1\n").unwrap();
        file.flush().unwrap();
        fs::remove_dir_all(&dir).unwrap();
        file.write_all(b"2\n").unwrap();
        file.write_all(b"3\n").unwrap();
        file.flush().unwrap();
        assert_eq!(fs::read_to_string(dir.join(today())).unwrap(), "2\n3\n");
        assert!(!file.health().failing());
        // A file where the directory was: failing until it is gone.
        fs::remove_dir_all(&dir).unwrap();
        fs::write(&dir, "in the way").unwrap();
        assert!(file.write(b"4\n").is_err());
        assert!(file.health().failing());
        fs::remove_file(&dir).unwrap();
        file.write_all(b"5\n").unwrap();
        assert!(!file.health().failing());
        assert_eq!(fs::read_to_string(dir.join(today())).unwrap(), "5\n");
        fs::remove_dir_all(&dir).unwrap();
    }
}
