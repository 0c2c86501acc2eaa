//! One real `icecast2` (Debian's 2.4) on a free loopback port with a generated
//! config, killed on drop: shared by the bridge's Icecast tests and by
//! `cargo xtask icecast-bench`.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The source, relay and admin password of every generated config.
pub const PASSWORD: &str = "hackme-source";

/// One `icecast2` process with its own directory; killed on drop.
pub struct Icecast {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

/// A free loopback port (released for the process that takes it next).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Whether this process runs as root: Debian's `icecast2` then refuses to start
/// unless it is told whom to become.
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|ids| ids.split_whitespace().next() == Some("0"))
        })
        .unwrap_or(false)
}

impl Icecast {
    /// Starts an Icecast in the empty directory `dir` whose config also holds
    /// `extra` (mounts, relays), taking up to `clients` listeners.
    pub fn start(dir: PathBuf, extra: &str, clients: usize) -> Self {
        // Icecast drops root for `nobody`, who must still write its logs.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))
            .expect("a writable directory");
        let mut icecast = Self {
            child: None,
            port: free_port(),
            dir,
        };
        icecast.write_config(extra, clients);
        icecast.spawn();
        icecast
    }

    fn write_config(&self, extra: &str, clients: usize) {
        let dir = self.dir.display();
        let owner = if running_as_root() {
            "<changeowner><user>nobody</user><group>nogroup</group></changeowner>"
        } else {
            ""
        };
        let xml = format!(
            "<icecast>
  <location>test</location><admin>test@localhost</admin>
  <limits><clients>{clients}</clients><sources>8</sources><source-timeout>10</source-timeout>
    <burst-size>0</burst-size></limits>
  <authentication><source-password>{PASSWORD}</source-password>
    <relay-password>{PASSWORD}</relay-password><admin-user>admin</admin-user>
    <admin-password>{PASSWORD}</admin-password></authentication>
  <hostname>127.0.0.1</hostname>
  <listen-socket><port>{port}</port><bind-address>127.0.0.1</bind-address></listen-socket>
  <master-update-interval>1</master-update-interval>
  {extra}
  <fileserve>0</fileserve>
  <paths><basedir>/usr/share/icecast2</basedir><logdir>{dir}</logdir>
    <webroot>/usr/share/icecast2/web</webroot><adminroot>/usr/share/icecast2/admin</adminroot>
    <pidfile>{dir}/icecast.pid</pidfile></paths>
  <logging><accesslog>access.log</accesslog><errorlog>error.log</errorlog><loglevel>3</loglevel></logging>
  <security><chroot>0</chroot>{owner}</security>
</icecast>",
            port = self.port
        );
        std::fs::write(self.dir.join("icecast.xml"), xml).expect("write the config");
    }

    /// Starts the process and waits until it accepts connections.
    pub fn spawn(&mut self) {
        let child = Command::new("icecast2")
            .arg("-c")
            .arg(self.dir.join("icecast.xml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("icecast2 runs (Debian's `icecast2`; CI installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(self.addr()).is_err() {
            assert!(
                Instant::now() < deadline,
                "icecast2 did not listen on {}: {}",
                self.addr(),
                self.error_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The source URL of `mount` with `password`.
    pub fn url(&self, password: &str, mount: &str) -> String {
        format!("icecast://source:{password}@127.0.0.1:{}{mount}", self.port)
    }

    /// A `<relay>` of this server's `mount`, served as `local`.
    pub fn relay_xml(&self, mount: &str, local: &str) -> String {
        format!(
            "<relay><server>127.0.0.1</server><port>{}</port><mount>{mount}</mount>
             <local-mount>{local}</local-mount><on-demand>0</on-demand>
             <relay-shoutcast-metadata>0</relay-shoutcast-metadata></relay>",
            self.port
        )
    }

    /// Its error log so far.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // It may have exited already; the wait reaps it either way.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Icecast {
    fn drop(&mut self) {
        self.kill();
    }
}
