//! PID files ([`PidFiles`]) and what `/proc` says of a PID: how one invocation of a tool
//! finds the role processes another one started, and tells that a PID still names one.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use ecommerce::role::Role;

/// A folder with one file per role process, `<role>.pid` holding its PID as decimal text
/// (`<role>.<n>.pid`, n = 1, 2 ..., for a role's further processes), so that another
/// invocation (a `stop`, a `status`) finds what a `start` left running. The format is the
/// one `scripts/topology.sh` wrote: a script may `cat` a file for a role's PID.
#[derive(Debug, Clone)]
pub struct PidFiles {
    dir: PathBuf,
}

/// One PID file and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub role: Role,
    /// 0 for `<role>.pid`, n for `<role>.<n>.pid`.
    pub slot: usize,
    pub path: PathBuf,
    /// `None` when the file holds no PID (cut short, or not ours).
    pub pid: Option<u32>,
}

impl PidFiles {
    pub fn new(dir: impl Into<PathBuf>) -> PidFiles {
        PidFiles { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of the `slot`-th process of `role`.
    pub fn path(&self, role: Role, slot: usize) -> PathBuf {
        self.dir.join(match slot {
            0 => format!("{role}.pid"),
            n => format!("{role}.{n}.pid"),
        })
    }

    /// Records `pid` in the file of `role`'s `slot`-th process, creating the folder when
    /// missing. Written aside and renamed, so a reader never sees half a PID.
    pub fn write(&self, role: Role, slot: usize, pid: u32) -> io::Result<PathBuf> {
        let path = self.path(role, slot);
        write_pid(&path, pid)?;
        Ok(path)
    }

    /// Every PID file in the folder, in role order (none when the folder does not exist).
    /// Other files are not ours and are left out.
    pub fn read(&self) -> io::Result<Vec<Recorded>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut recorded = Vec::new();
        for entry in entries {
            let path = entry?.path();
            let Some((role, slot)) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(parse_name)
            else {
                continue;
            };
            let pid = match fs::read_to_string(&path) {
                Ok(text) => text.trim().parse().ok().filter(|pid| *pid > 0),
                // Removed meanwhile (a process stopped): nothing to record.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            recorded.push(Recorded {
                role,
                slot,
                path,
                pid,
            });
        }
        recorded.sort_by_key(|r| (r.role, r.slot));
        Ok(recorded)
    }

    /// Removes the folder and everything in it; a folder already gone is no error.
    pub fn remove_all(&self) -> io::Result<()> {
        match fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Writes `pid` to `path` (its folder created when missing) aside first, then renamed.
pub(super) fn write_pid(path: &Path, pid: u32) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let aside = path.with_extension(format!("pid.tmp{}", std::process::id()));
    fs::write(&aside, format!("{pid}\n"))?;
    fs::rename(&aside, path)
}

/// `<role>.pid` or `<role>.<n>.pid` (role names hold no dot).
fn parse_name(name: &str) -> Option<(Role, usize)> {
    let stem = name.strip_suffix(".pid")?;
    match stem.split_once('.') {
        None => Some((stem.parse().ok()?, 0)),
        Some((role, n)) => {
            let slot: usize = n.parse().ok().filter(|n| *n > 0)?;
            Some((role.parse().ok()?, slot))
        }
    }
}

/// A process that is not this program's child, known by its PID and its start time: a
/// PID can be reused once its process is gone, a (PID, start time) pair cannot.
#[derive(Debug, Clone, Copy)]
pub(super) struct Known {
    pub(super) pid: u32,
    started: u64,
}

impl Known {
    /// The process `pid` when it runs (a zombie does not) as `ecommerce serve --role
    /// <role>`, with its arguments.
    pub(super) fn identify(pid: u32, role: Role) -> Option<(Known, Vec<String>)> {
        let (_, started) = stat(pid).filter(|(state, _)| running(*state))?;
        let args = cmdline(pid)?;
        let serves_role = args.len() >= 4
            && args[1] == "serve"
            && args[2] == "--role"
            && args[3] == role.as_str();
        let known = Known { pid, started };
        // Read again: the arguments were those of the process that started then.
        (serves_role && known.alive()).then_some((known, args))
    }

    /// Whether it still runs (not exited, not a zombie, not replaced by another process
    /// under the same PID).
    pub(super) fn alive(&self) -> bool {
        stat(self.pid).is_some_and(|(state, started)| running(state) && started == self.started)
    }
}

fn running(state: char) -> bool {
    // Z: exited, waiting for its parent to collect it; X: dead.
    !matches!(state, 'Z' | 'X')
}

/// The state letter and start time (clock ticks after boot) of `/proc/<pid>/stat`.
fn stat(pid: u32) -> Option<(char, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may hold spaces and parentheses itself.
    let after_name = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 3 (state) and 22 (starttime) of proc(5), counted from 1 before the name.
    let state = fields.first()?.chars().next()?;
    let started = fields.get(19)?.parse().ok()?;
    Some((state, started))
}

fn cmdline(pid: u32) -> Option<Vec<String>> {
    let bytes = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = bytes
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    (!args.is_empty()).then_some(args)
}

/// The value after `option` in `args`.
pub(super) fn option_value(args: &[String], option: &str) -> Option<String> {
    let at = args.iter().position(|a| a == option)?;
    args.get(at + 1).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_say_role_and_slot() {
        let files = PidFiles::new("/run/shop");
        assert_eq!(
            files.path(Role::WebGateway, 0),
            Path::new("/run/shop/web-gateway.pid")
        );
        assert_eq!(files.path(Role::Cart, 2), Path::new("/run/shop/cart.2.pid"));
        assert_eq!(parse_name("web-gateway.pid"), Some((Role::WebGateway, 0)));
        assert_eq!(parse_name("cart.2.pid"), Some((Role::Cart, 2)));
        for other in [
            "cart.0.pid",
            "basket.pid",
            "cart.pid.tmp12",
            "cart.x.pid",
            "cart",
        ] {
            assert_eq!(parse_name(other), None, "{other}");
        }
    }

    #[test]
    fn written_files_read_back_in_role_order_and_leave_others_out() {
        let dir = tempfile::tempdir().unwrap();
        let files = PidFiles::new(dir.path().join("pids"));
        assert_eq!(files.read().unwrap(), []);
        files.write(Role::Product, 0, 41).unwrap();
        files.write(Role::Cart, 1, 43).unwrap();
        files.write(Role::Cart, 0, 42).unwrap();
        fs::write(files.dir().join("notes.txt"), "not a pid").unwrap();
        fs::write(files.dir().join("content.pid"), "garbage").unwrap();

        let read: Vec<(Role, usize, Option<u32>)> = files
            .read()
            .unwrap()
            .into_iter()
            .map(|r| (r.role, r.slot, r.pid))
            .collect();

        assert_eq!(
            read,
            [
                (Role::Cart, 0, Some(42)),
                (Role::Cart, 1, Some(43)),
                (Role::Content, 0, None),
                (Role::Product, 0, Some(41)),
            ]
        );
        assert_eq!(
            fs::read_to_string(files.path(Role::Cart, 0)).unwrap(),
            "42\n"
        );
        files.remove_all().unwrap();
        assert!(!files.dir().exists());
        files.remove_all().unwrap();
    }

    #[test]
    fn a_process_is_known_only_as_what_it_runs() {
        // This test's own process is alive, but serves no role.
        let me = std::process::id();
        assert!(stat(me).is_some_and(|(state, _)| running(state)));
        assert!(Known::identify(me, Role::Cart).is_none());
        let gone = Known {
            pid: me,
            started: u64::MAX,
        };
        assert!(!gone.alive(), "another start time is another process");
    }

    #[test]
    fn option_values_are_found_after_their_option() {
        let args: Vec<String> = [
            "ecommerce",
            "serve",
            "--role",
            "cart",
            "--listen",
            "127.0.0.1:1",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            option_value(&args, "--listen").as_deref(),
            Some("127.0.0.1:1")
        );
        assert_eq!(option_value(&args, "--admin-listen"), None);
    }
}
