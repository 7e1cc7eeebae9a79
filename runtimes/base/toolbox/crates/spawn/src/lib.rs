//! Child processes for a guest of wasmbuild's sandbox. WASI preview 1 has no way to start
//! a program; wasmbuild's sandbox answers requests written to `/dev/process/spawn` by
//! starting the program (sandboxed, looked up as the build shell would) and gives its
//! status through `/dev/process/N/status`. This crate wraps that in the shape of
//! `std::process`: [`Command`], [`Child`], [`ExitStatus`], and [`wait_any`] for running
//! several children at once.

use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

const DEVICE: &str = "/dev/process";

/// Where a child's standard stream goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdio {
    /// The same descriptor as this program's.
    Inherit,
    /// `/dev/null`.
    Null,
    /// A pipe to this program ([`Child::stdin`], [`Child::stdout`], [`Child::stderr`]).
    Piped,
}

impl Stdio {
    fn spec(self) -> &'static str {
        match self {
            Stdio::Inherit => "inherit",
            Stdio::Null => "null",
            Stdio::Piped => "pipe",
        }
    }
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus {
    code: Option<i32>,
    signal: Option<i32>,
}

impl ExitStatus {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The exit status, unless the child was stopped by a signal.
    pub fn code(&self) -> Option<i32> {
        self.code
    }

    /// The signal that stopped the child.
    pub fn signal(&self) -> Option<i32> {
        self.signal
    }

    /// The status as a shell reports it (128+n for signal n).
    pub fn shell_status(&self) -> i32 {
        match (self.code, self.signal) {
            (Some(code), _) => code,
            (None, Some(signal)) => 128 + signal,
            (None, None) => 1,
        }
    }

    fn parse(answer: &str) -> io::Result<Self> {
        let (kind, value) = answer
            .trim()
            .split_once(' ')
            .ok_or_else(|| bad_answer(answer))?;
        let value: i32 = value.parse().map_err(|_| bad_answer(answer))?;
        match kind {
            "exit" => Ok(ExitStatus {
                code: Some(value),
                signal: None,
            }),
            "signal" => Ok(ExitStatus {
                code: None,
                signal: Some(value),
            }),
            _ => Err(bad_answer(answer)),
        }
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "exit status: {code}"),
            (None, Some(signal)) => write!(f, "signal: {signal}"),
            (None, None) => f.write_str("unknown status"),
        }
    }
}

fn bad_answer(answer: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unexpected answer from {DEVICE}: {answer:?}"),
    )
}

/// A program to start, as `std::process::Command`.
#[derive(Debug, Clone)]
pub struct Command {
    program: OsString,
    args: Vec<OsString>,
    env: Option<Vec<(OsString, OsString)>>,
    env_changes: Vec<(OsString, Option<OsString>)>,
    cwd: Option<PathBuf>,
    stdio: [Stdio; 3],
}

impl Command {
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Command {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            env: None,
            env_changes: Vec::new(),
            cwd: None,
            stdio: [Stdio::Inherit; 3],
        }
    }

    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for arg in args {
            self.arg(arg);
        }
        self
    }

    /// The child starts with no environment but what is set afterwards.
    pub fn env_clear(&mut self) -> &mut Self {
        self.env = Some(Vec::new());
        self.env_changes.clear();
        self
    }

    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Self {
        self.env_changes
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        for (key, value) in vars {
            self.env(key, value);
        }
        self
    }

    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Self {
        self.env_changes.push((key.as_ref().to_owned(), None));
        self
    }

    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }

    pub fn stdin(&mut self, stdio: Stdio) -> &mut Self {
        self.stdio[0] = stdio;
        self
    }

    pub fn stdout(&mut self, stdio: Stdio) -> &mut Self {
        self.stdio[1] = stdio;
        self
    }

    pub fn stderr(&mut self, stdio: Stdio) -> &mut Self {
        self.stdio[2] = stdio;
        self
    }

    pub fn get_program(&self) -> &OsStr {
        &self.program
    }

    pub fn get_args(&self) -> impl Iterator<Item = &OsStr> {
        self.args.iter().map(OsString::as_os_str)
    }

    /// The environment the child gets.
    fn environment(&self) -> Vec<(OsString, OsString)> {
        let mut env: Vec<(OsString, OsString)> = match &self.env {
            Some(env) => env.clone(),
            None => std::env::vars_os().collect(),
        };
        for (key, value) in &self.env_changes {
            env.retain(|(k, _)| k != key);
            if let Some(value) = value {
                env.push((key.clone(), value.clone()));
            }
        }
        env
    }

    /// The directory the child starts in: an absolute guest path.
    fn directory(&self) -> PathBuf {
        // A WASI program has no working directory of its own; the shell says it in $PWD.
        let base = std::env::var_os("PWD")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_else(|| PathBuf::from("/"));
        match &self.cwd {
            Some(dir) => base.join(dir),
            None => base,
        }
    }

    /// The request as the device reads it.
    fn request(&self) -> Vec<u8> {
        let mut fields: Vec<Vec<u8>> = vec![b"spawn".to_vec()];
        fields.push((self.args.len() + 1).to_string().into_bytes());
        fields.push(self.program.as_encoded_bytes().to_vec());
        fields.extend(self.args.iter().map(|a| a.as_encoded_bytes().to_vec()));
        let env = self.environment();
        fields.push(env.len().to_string().into_bytes());
        for (key, value) in env {
            let mut pair = key.as_encoded_bytes().to_vec();
            pair.push(b'=');
            pair.extend_from_slice(value.as_encoded_bytes());
            fields.push(pair);
        }
        fields.push(self.directory().as_os_str().as_encoded_bytes().to_vec());
        for stdio in self.stdio {
            fields.push(stdio.spec().as_bytes().to_vec());
        }
        let mut out = Vec::new();
        for field in fields {
            out.extend_from_slice(&field);
            out.push(0);
        }
        out
    }

    /// Starts the child. A program no one provides is `NotFound`; the build's cap on live
    /// processes is `WouldBlock`.
    pub fn spawn(&mut self) -> io::Result<Child> {
        let mut device = OpenOptions::new()
            .read(true)
            .write(true)
            .open(format!("{DEVICE}/spawn"))?;
        device.write_all(&self.request())?;
        let mut answer = String::new();
        device.read_to_string(&mut answer)?;
        let id: u32 = answer.trim().parse().map_err(|_| bad_answer(&answer))?;
        let open = |name: &str, write: bool| {
            OpenOptions::new()
                .read(!write)
                .write(write)
                .open(format!("{DEVICE}/{id}/{name}"))
        };
        Ok(Child {
            id,
            stdin: (self.stdio[0] == Stdio::Piped)
                .then(|| open("stdin", true))
                .transpose()?,
            stdout: (self.stdio[1] == Stdio::Piped)
                .then(|| open("stdout", false))
                .transpose()?,
            stderr: (self.stdio[2] == Stdio::Piped)
                .then(|| open("stderr", false))
                .transpose()?,
            status: None,
        })
    }

    /// Starts the child and waits for it.
    pub fn status(&mut self) -> io::Result<ExitStatus> {
        self.spawn()?.wait()
    }
}

/// A started child.
#[derive(Debug)]
pub struct Child {
    id: u32,
    pub stdin: Option<File>,
    pub stdout: Option<File>,
    pub stderr: Option<File>,
    status: Option<ExitStatus>,
}

impl Child {
    /// The child's number among this program's children.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Waits for the child to end (closing its stdin first, as `std` does).
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        if let Some(status) = self.status {
            return Ok(status);
        }
        let status = ExitStatus::parse(&read_answer(&format!("{DEVICE}/{}/status", self.id))?)?;
        self.status = Some(status);
        Ok(status)
    }

    /// The status if the child has ended.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(status) = self.status {
            return Ok(Some(status));
        }
        let answer = read_answer(&format!("{DEVICE}/{}/poll", self.id))?;
        if answer.trim() == "running" {
            return Ok(None);
        }
        let status = ExitStatus::parse(&answer)?;
        self.status = Some(status);
        Ok(Some(status))
    }

    /// Stops the child (SIGKILL).
    pub fn kill(&mut self) -> io::Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        let mut kill = OpenOptions::new()
            .write(true)
            .open(format!("{DEVICE}/{}/kill", self.id))?;
        kill.write_all(b"9")
    }
}

fn read_answer(path: &str) -> io::Result<String> {
    let mut answer = String::new();
    File::open(path)?.read_to_string(&mut answer)?;
    Ok(answer)
}

/// Waits for any child not yet waited for: its number and status. `Err` with no child.
/// (A child reaped here still answers its own [`Child::wait`].)
pub fn wait_any() -> io::Result<(u32, ExitStatus)> {
    let answer = read_answer(&format!("{DEVICE}/wait"))?;
    let (id, status) = answer
        .trim()
        .split_once(' ')
        .ok_or_else(|| bad_answer(&answer))?;
    let id: u32 = id.parse().map_err(|_| bad_answer(&answer))?;
    Ok((id, ExitStatus::parse(status)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_lists_every_field() {
        let mut command = Command::new("grep");
        command
            .arg("-q")
            .arg("a b")
            .env_clear()
            .env("A", "1")
            .current_dir("/work")
            .stdout(Stdio::Piped)
            .stderr(Stdio::Null);
        let request = command.request();
        let fields: Vec<String> = request
            .split(|&b| b == 0)
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect();
        assert_eq!(
            fields,
            [
                "spawn", "3", "grep", "-q", "a b", "1", "A=1", "/work", "inherit", "pipe", "null",
                ""
            ]
        );
    }

    #[test]
    fn statuses_parse_as_the_device_gives_them() {
        assert_eq!(ExitStatus::parse("exit 3\n").unwrap().code(), Some(3));
        let killed = ExitStatus::parse("signal 9\n").unwrap();
        assert_eq!((killed.code(), killed.signal()), (None, Some(9)));
        assert_eq!(killed.shell_status(), 137);
        assert!(ExitStatus::parse("running").is_err());
    }
}
