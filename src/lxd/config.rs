//! Where to connect: socket discovery and the `lxc` and `incus` client configurations (remotes,
//! certificates).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::error::{Error, Result};
use super::tls::{ServerVerification, TlsSettings, read_certificate};
use super::transport::Endpoint;

/// A fully resolved connection target.
#[derive(Debug, Clone)]
pub struct Target {
    /// Where the server is.
    pub endpoint: Endpoint,
    /// TLS settings (HTTPS only).
    pub tls: Option<TlsSettings>,
    /// The project to use, when not the default one.
    pub project: Option<String>,
    /// The remote name this came from, if any.
    pub remote: Option<String>,
}

/// Which command-line client's conventions a configuration directory or a socket follows: LXD's
/// `lxc` or Incus's `incus`. Both write the same `config.yml` format with `servercerts/` beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientFamily {
    /// `lxc`: `$LXD_CONF`, `~/.config/lxc`; sockets `$LXD_SOCKET`, `$LXD_DIR`, the snap's, `/var/lib/lxd`.
    Lxd,
    /// `incus`: `$INCUS_CONF`, `~/.config/incus`; sockets `$INCUS_SOCKET`, `$INCUS_DIR`,
    /// `/run/incus`, `/var/lib/incus`.
    Incus,
}

impl ClientFamily {
    /// The socket a user of this family points at explicitly through the environment, if any.
    fn socket_from_env(self) -> Option<PathBuf> {
        let (socket, dir) = match self {
            ClientFamily::Lxd => ("LXD_SOCKET", "LXD_DIR"),
            ClientFamily::Incus => ("INCUS_SOCKET", "INCUS_DIR"),
        };
        let set = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        set(socket)
            .map(PathBuf::from)
            .or_else(|| set(dir).map(|d| PathBuf::from(d).join("unix.socket")))
    }

    /// Where the packages of this family put the daemon's socket, most specific first.
    fn default_sockets(self) -> &'static [&'static str] {
        match self {
            ClientFamily::Lxd => &[
                "/var/snap/lxd/common/lxd/unix.socket",
                "/var/lib/lxd/unix.socket",
            ],
            ClientFamily::Incus => &["/run/incus/unix.socket", "/var/lib/incus/unix.socket"],
        }
    }

    /// The other family.
    fn other(self) -> ClientFamily {
        match self {
            ClientFamily::Lxd => ClientFamily::Incus,
            ClientFamily::Incus => ClientFamily::Lxd,
        }
    }
}

/// Finds the local unix socket, LXD's first: a socket named by the environment (`$LXD_SOCKET`,
/// `$LXD_DIR`, then `$INCUS_SOCKET`, `$INCUS_DIR`) is taken as it is; otherwise the first of the
/// packages' sockets (LXD's snap, `/var/lib/lxd`, then Incus's `/run/incus`, `/var/lib/incus`)
/// where a daemon answers, so a machine with only Incus finds Incus.
pub fn discover_socket() -> PathBuf {
    discover_socket_of(ClientFamily::Lxd)
}

/// Finds the local unix socket as [`discover_socket`] does, with `first`'s places before the
/// other family's (a remote `unix://` of the `incus` configuration means Incus's socket).
fn discover_socket_of(first: ClientFamily) -> PathBuf {
    let order = [first, first.other()];
    if let Some(socket) = order.iter().find_map(|f| f.socket_from_env()) {
        return socket;
    }
    let defaults: Vec<PathBuf> = order
        .iter()
        .flat_map(|f| f.default_sockets())
        .map(PathBuf::from)
        .collect();
    first_answering(&defaults).unwrap_or_else(|| PathBuf::from(first.default_sockets()[0]))
}

/// The first socket where a daemon accepts a connection, else the first that exists.
fn first_answering(candidates: &[PathBuf]) -> Option<PathBuf> {
    candidates
        .iter()
        .find(|s| std::os::unix::net::UnixStream::connect(s).is_ok())
        .or_else(|| candidates.iter().find(|s| s.exists()))
        .cloned()
}

/// One remote of `config.yml`.
#[derive(Debug, Clone, Deserialize)]
pub struct Remote {
    /// `unix://`, `unix:///path` or `https://host:port`.
    pub addr: String,
    /// The remote's project.
    #[serde(default)]
    pub project: Option<String>,
    /// `lxd` or `simplestreams`.
    #[serde(default)]
    pub protocol: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    #[serde(rename = "default-remote", default)]
    default_remote: Option<String>,
    #[serde(default)]
    remotes: BTreeMap<String, Remote>,
}

/// One client's configuration directory and its `config.yml`.
#[derive(Debug)]
struct ConfigDir {
    family: ClientFamily,
    dir: PathBuf,
    file: ConfigFile,
}

impl ConfigDir {
    fn load(family: ClientFamily, dir: &Path) -> Result<ConfigDir> {
        let path = dir.join("config.yml");
        let file = match std::fs::read_to_string(&path) {
            Ok(text) => parse_config(&text).map_err(|e| {
                Error::Config(format!(
                    "cannot read {}: {e}; fix the file or point {} elsewhere",
                    path.display(),
                    conf_variable(family)
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ConfigFile::default(),
            Err(e) => {
                return Err(Error::Config(format!(
                    "cannot read {}: {e}",
                    path.display()
                )));
            }
        };
        Ok(ConfigDir {
            family,
            dir: dir.to_owned(),
            file,
        })
    }

    /// The client certificate and key of this directory, when both exist.
    fn client_identity(&self) -> Option<(PathBuf, PathBuf)> {
        let (crt, key) = (self.dir.join("client.crt"), self.dir.join("client.key"));
        (crt.exists() && key.exists()).then_some((crt, key))
    }

    /// The client certificate and key, generated first when there are none (as `lxc` and
    /// `incus` do on first use): an ECDSA P-384 self-signed certificate, the key mode 0600.
    fn ensure_client_identity(&self) -> Result<(PathBuf, PathBuf)> {
        match self.client_identity() {
            Some(identity) => Ok(identity),
            None => generate_identity(&self.dir),
        }
    }

    fn config_file(&self) -> String {
        self.dir.join("config.yml").display().to_string()
    }
}

/// The client configurations of `lxc` and `incus`: their remotes, certificates and default
/// remote. Where both define a remote of one name, `lxc`'s wins; the default remote is the
/// first one a configuration names, `lxc`'s first.
#[derive(Debug, Default)]
pub struct ClientConfig {
    dirs: Vec<ConfigDir>,
}

impl ClientConfig {
    /// Finds the configuration directories (`lxc`'s: `$LXD_CONF`, `~/.config/lxc`, the snap's
    /// `~/snap/lxd/common/config`; `incus`'s: `$INCUS_CONF`, `~/.config/incus`) and reads their
    /// `config.yml`; a missing file is an empty configuration.
    pub fn discover() -> Result<ClientConfig> {
        let mut dirs = Vec::new();
        for family in [ClientFamily::Lxd, ClientFamily::Incus] {
            if let Some(dir) = config_dir(family) {
                dirs.push(ConfigDir::load(family, &dir)?);
            }
        }
        Ok(ClientConfig { dirs })
    }

    /// Reads the configuration of one `lxc` directory alone.
    pub fn load(dir: &Path) -> Result<ClientConfig> {
        ClientConfig::load_family(ClientFamily::Lxd, dir)
    }

    /// Reads the configuration of one directory of the given client alone.
    pub fn load_family(family: ClientFamily, dir: &Path) -> Result<ClientConfig> {
        Ok(ClientConfig {
            dirs: vec![ConfigDir::load(family, dir)?],
        })
    }

    /// The default remote's name, if a configuration names one.
    pub fn default_remote(&self) -> Option<&str> {
        self.dirs
            .iter()
            .find_map(|d| d.file.default_remote.as_deref())
    }

    /// The names of the configured remotes, of both clients, each once.
    pub fn remote_names(&self) -> impl Iterator<Item = &str> {
        let names: std::collections::BTreeSet<&str> = self
            .dirs
            .iter()
            .flat_map(|d| d.file.remotes.keys().map(String::as_str))
            .collect();
        names.into_iter()
    }

    /// Resolves a remote by name.
    pub fn remote(&self, name: &str) -> Result<Target> {
        let found = self
            .dirs
            .iter()
            .find_map(|d| d.file.remotes.get(name).map(|r| (d, r)));
        let (dir, remote) = match found {
            Some(found) => found,
            None if name == "local" => {
                return Ok(Target {
                    endpoint: Endpoint::Unix(discover_socket()),
                    tls: None,
                    project: None,
                    remote: Some(name.to_owned()),
                });
            }
            None => {
                let known: Vec<&str> = self.remote_names().collect();
                return Err(Error::Config(format!(
                    "no remote named '{name}' in {} (known: {}); add it with `lxc remote add` or `incus remote add`",
                    self.describe_files(),
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                )));
            }
        };
        if remote
            .protocol
            .as_deref()
            .is_some_and(|p| p != "lxd" && p != "incus")
        {
            return Err(Error::Config(format!(
                "remote '{name}' is an image server ({}), not an LXD or Incus server",
                remote.protocol.as_deref().unwrap_or_default()
            )));
        }
        let project = remote.project.clone().filter(|p| p != "default");
        let endpoint = parse_addr_of(&remote.addr, dir.family)?;
        let tls = match &endpoint {
            Endpoint::Unix(_) => None,
            Endpoint::Https(_) => Some(tls_for_remote(dir, name)?),
        };
        Ok(Target {
            endpoint,
            tls,
            project,
            remote: Some(name.to_owned()),
        })
    }

    /// The client certificate and key for an explicit endpoint, generated first when there are
    /// none: `lxc`'s (where `incus`'s, on a machine that has only an `incus` configuration).
    pub fn ensure_client_identity(&self) -> Result<(PathBuf, PathBuf)> {
        if let Some(dir) = self.dirs.first() {
            return dir.ensure_client_identity();
        }
        let dir = default_config_dir().ok_or_else(|| {
            Error::Config("no lxc configuration directory: set LXD_CONF or HOME".to_owned())
        })?;
        generate_identity(&dir)
    }

    /// The pinned certificate of the remote whose address is `url`, if any.
    pub fn pinned_for_url(&self, url: &str) -> Option<PathBuf> {
        let url = url.trim_end_matches('/');
        self.dirs.iter().find_map(|d| {
            d.file
                .remotes
                .iter()
                .find(|(_, r)| r.addr.trim_end_matches('/') == url)
                .map(|(name, _)| d.dir.join("servercerts").join(format!("{name}.crt")))
                .filter(|p| p.exists())
        })
    }

    fn describe_files(&self) -> String {
        if self.dirs.is_empty() {
            return "the lxc or incus configuration (none found)".to_owned();
        }
        let files: Vec<String> = self.dirs.iter().map(ConfigDir::config_file).collect();
        files.join(" or ")
    }
}

/// The TLS settings of a remote: its configuration's client cert/key and the pinned
/// `servercerts/<remote>.crt` beside it.
fn tls_for_remote(dir: &ConfigDir, name: &str) -> Result<TlsSettings> {
    let pinned = dir.dir.join("servercerts").join(format!("{name}.crt"));
    if !pinned.exists() {
        let command = match dir.family {
            ClientFamily::Lxd => "lxc",
            ClientFamily::Incus => "incus",
        };
        return Err(Error::Tls(format!(
            "no pinned server certificate for remote '{name}' ({} is missing); add the remote with `{command} remote add` or pass verify: PATH",
            pinned.display()
        )));
    }
    Ok(TlsSettings {
        client_identity: Some(dir.ensure_client_identity()?),
        server: ServerVerification::Pinned {
            der: read_certificate(&pinned)?,
            source: pinned,
        },
    })
}

/// The environment variable that names a family's configuration directory.
fn conf_variable(family: ClientFamily) -> &'static str {
    match family {
        ClientFamily::Lxd => "LXD_CONF",
        ClientFamily::Incus => "INCUS_CONF",
    }
}

fn parse_config(text: &str) -> std::result::Result<ConfigFile, serde_yaml_ng::Error> {
    if text.trim().is_empty() {
        return Ok(ConfigFile::default());
    }
    serde_yaml_ng::from_str(text)
}

/// Where a new configuration goes when there is none: `$LXD_CONF`, else `~/.config/lxc`.
fn default_config_dir() -> Option<PathBuf> {
    std::env::var_os("LXD_CONF")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config/lxc")))
}

/// Writes a new client certificate and key into `dir`.
fn generate_identity(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};

    let io = |what: &Path, e: std::io::Error| {
        Error::Config(format!("cannot write {}: {e}", what.display()))
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io(dir, e))?;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)
        .map_err(|e| Error::Tls(format!("cannot generate a client key: {e}")))?;
    let user = std::env::var("USER").unwrap_or_else(|_| "root".to_owned());
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|e| Error::Tls(format!("cannot make a client certificate: {e}")))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("{user}@{}", host.trim()));
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "lxd-script");
    params.not_after = rcgen::date_time_ymd(2036, 1, 1);
    let cert = params
        .self_signed(&key)
        .map_err(|e| Error::Tls(format!("cannot sign a client certificate: {e}")))?;
    let (crt_path, key_path) = (dir.join("client.crt"), dir.join("client.key"));
    let mut key_file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&key_path)
        .map_err(|e| io(&key_path, e))?;
    key_file
        .write_all(key.serialize_pem().as_bytes())
        .map_err(|e| io(&key_path, e))?;
    std::fs::write(&crt_path, cert.pem()).map_err(|e| io(&crt_path, e))?;
    Ok((crt_path, key_path))
}

/// A family's configuration directory, if one is set or exists.
fn config_dir(family: ClientFamily) -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(conf_variable(family)).filter(|s| !s.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let home = PathBuf::from(std::env::var_os("HOME")?);
    let candidates = match family {
        ClientFamily::Lxd => vec![
            home.join(".config/lxc"),
            home.join("snap/lxd/common/config"),
        ],
        ClientFamily::Incus => vec![home.join(".config/incus")],
    };
    candidates.into_iter().find(|d| d.exists())
}

/// Parses an address as written in `config.yml` or by a user: `unix://` (discovery),
/// `unix:///path`, `unix:/path`, `/path`, or `https://host:port`.
pub fn parse_addr(addr: &str) -> Result<Endpoint> {
    parse_addr_of(addr, ClientFamily::Lxd)
}

/// Parses an address as [`parse_addr`] does; `unix://` finds `family`'s socket first.
fn parse_addr_of(addr: &str, family: ClientFamily) -> Result<Endpoint> {
    if addr == "unix://" || addr == "unix:" {
        return Ok(Endpoint::Unix(discover_socket_of(family)));
    }
    if let Some(path) = addr
        .strip_prefix("unix://")
        .or_else(|| addr.strip_prefix("unix:"))
    {
        return Ok(Endpoint::Unix(PathBuf::from(path)));
    }
    if addr.starts_with('/') {
        return Ok(Endpoint::Unix(PathBuf::from(addr)));
    }
    if addr.starts_with("https://") {
        return Ok(Endpoint::Https(addr.trim_end_matches('/').to_owned()));
    }
    Err(Error::InvalidArgument(format!(
        "'{addr}' is not an LXD address: use a socket path (/path or unix:/path) or https://host:port"
    )))
}

/// How the server certificate of an explicit HTTPS endpoint is checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Verify {
    /// Pin the certificate saved for this address in the `lxc` configuration (required).
    #[default]
    Pinned,
    /// Pin the certificate in this file.
    PinnedFile(PathBuf),
    /// Do not verify: only when the user explicitly asked for it.
    Disabled,
}

/// What a user asked to connect to, before resolution.
#[derive(Debug, Clone, Default)]
pub struct ConnectSpec {
    /// A remote name of the `lxc` configuration.
    pub remote: Option<String>,
    /// A socket path or `https://` URL; wins over `remote`.
    pub endpoint: Option<String>,
    /// Client certificate (PEM) for HTTPS.
    pub cert: Option<PathBuf>,
    /// Client key (PEM) for HTTPS.
    pub key: Option<PathBuf>,
    /// Server verification for an explicit HTTPS endpoint.
    pub verify: Verify,
    /// The project, overriding the remote's.
    pub project: Option<String>,
}

/// Resolves what to connect to: an explicit endpoint, else the named remote, else the `lxc`
/// configuration's default remote, else the local socket found by discovery.
pub fn resolve(spec: &ConnectSpec, config: &ClientConfig) -> Result<Target> {
    let mut target = if let Some(endpoint) = &spec.endpoint {
        let endpoint = parse_addr(endpoint)?;
        let tls = match &endpoint {
            Endpoint::Unix(_) => None,
            Endpoint::Https(url) => Some(explicit_tls(url, spec, config)?),
        };
        Target {
            endpoint,
            tls,
            project: None,
            remote: None,
        }
    } else if let Some(remote) = spec.remote.as_deref().or(config.default_remote()) {
        config.remote(remote)?
    } else {
        Target {
            endpoint: Endpoint::Unix(discover_socket()),
            tls: None,
            project: None,
            remote: None,
        }
    };
    if let Some(project) = &spec.project {
        target.project = (project != "default").then(|| project.clone());
    }
    Ok(target)
}

fn explicit_tls(url: &str, spec: &ConnectSpec, config: &ClientConfig) -> Result<TlsSettings> {
    let client_identity = match (&spec.cert, &spec.key) {
        (Some(c), Some(k)) => Some((c.clone(), k.clone())),
        (None, None) => Some(config.ensure_client_identity()?),
        _ => {
            return Err(Error::InvalidArgument(
                "give both cert and key (PEM file paths), or neither".to_owned(),
            ));
        }
    };
    let server = match &spec.verify {
        Verify::Disabled => ServerVerification::Disabled,
        Verify::PinnedFile(path) => ServerVerification::Pinned {
            der: read_certificate(path)?,
            source: path.clone(),
        },
        Verify::Pinned => match config.pinned_for_url(url) {
            Some(path) => ServerVerification::Pinned {
                der: read_certificate(&path)?,
                source: path,
            },
            None => {
                return Err(Error::Tls(format!(
                    "no pinned certificate for {url}: add it as a remote with `lxc remote add`, or pass verify: \"/path/to/server.crt\""
                )));
            }
        },
    };
    Ok(TlsSettings {
        client_identity,
        server,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A machine with only Incus: LXD's places hold nothing (or a dead socket), Incus's answers.
    #[test]
    fn the_first_socket_that_answers_wins() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (missing, dead, live) = (
            dir.path().join("lxd-missing.socket"),
            dir.path().join("lxd-dead.socket"),
            dir.path().join("incus.socket"),
        );
        drop(std::os::unix::net::UnixListener::bind(&dead).expect("bind"));
        let _listening = std::os::unix::net::UnixListener::bind(&live).expect("bind");
        let all = [missing.clone(), dead.clone(), live.clone()];
        assert_eq!(first_answering(&all), Some(live));
        assert_eq!(
            first_answering(&all[..2]),
            Some(dead),
            "else one that exists"
        );
        assert_eq!(first_answering(&all[..1]), None);
    }

    #[test]
    fn addresses_parse() {
        assert_eq!(
            parse_addr("unix:///x/unix.socket").expect("unix"),
            Endpoint::Unix("/x/unix.socket".into())
        );
        assert_eq!(
            parse_addr("/x/s").expect("path"),
            Endpoint::Unix("/x/s".into())
        );
        assert_eq!(
            parse_addr("https://h:1/").expect("https"),
            Endpoint::Https("https://h:1".into())
        );
        assert!(parse_addr("http://h").is_err());
    }

    #[test]
    fn config_files_parse_and_unknown_remotes_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("config.yml"),
            "default-remote: second\nremotes:\n  second: {addr: 'https://127.0.0.1:18444', protocol: lxd, project: p1}\n  images: {addr: 'https://images', protocol: simplestreams}\naliases: {}\n",
        )
        .expect("write");
        let cfg = ClientConfig::load(dir.path()).expect("load");
        assert_eq!(cfg.default_remote(), Some("second"));
        let err = cfg.remote("nope").expect_err("unknown");
        assert!(err.to_string().contains("images, second"), "{err}");
        assert!(cfg.remote("images").is_err());
        // No pinned certificate: a clear Tls error, never an unverified connection.
        let err = cfg.remote("second").expect_err("unpinned");
        assert!(err.to_string().contains("servercerts/second.crt"), "{err}");
        assert!(matches!(
            cfg.remote("local").expect("local").endpoint,
            Endpoint::Unix(_)
        ));
    }

    /// Both clients' configurations: `lxc`'s remote wins a name both define, `incus`'s remotes
    /// are found with their own pinned certificates, and the default remote is `lxc`'s when it
    /// names one.
    #[test]
    fn lxc_and_incus_configurations_together() {
        let root = tempfile::tempdir().expect("tempdir");
        let (lxc, incus) = (root.path().join("lxc"), root.path().join("incus"));
        for dir in [&lxc, &incus] {
            std::fs::create_dir_all(dir.join("servercerts")).expect("mkdir");
        }
        std::fs::write(
            lxc.join("config.yml"),
            "remotes:\n  both: {addr: 'https://127.0.0.1:1', protocol: lxd}\n",
        )
        .expect("write");
        std::fs::write(
            incus.join("config.yml"),
            "default-remote: inc\nremotes:\n  both: {addr: 'https://127.0.0.1:2', protocol: incus}\n  inc: {addr: 'https://127.0.0.1:3', protocol: incus}\n  sock: {addr: 'unix:///x/incus.socket', protocol: incus}\n",
        )
        .expect("write");
        let cfg = ClientConfig {
            dirs: vec![
                ConfigDir::load(ClientFamily::Lxd, &lxc).expect("lxc"),
                ConfigDir::load(ClientFamily::Incus, &incus).expect("incus"),
            ],
        };
        assert_eq!(
            cfg.remote_names().collect::<Vec<_>>(),
            ["both", "inc", "sock"]
        );
        assert_eq!(cfg.default_remote(), Some("inc"), "lxc's names none");
        // Pinned certificates are looked up beside the configuration that names the remote.
        let err = cfg.remote("both").expect_err("unpinned");
        assert!(
            err.to_string().contains("lxc/servercerts/both.crt"),
            "{err}"
        );
        let err = cfg.remote("inc").expect_err("unpinned");
        assert!(
            err.to_string().contains("incus/servercerts/inc.crt"),
            "{err}"
        );
        assert!(err.to_string().contains("incus remote add"), "{err}");
        assert_eq!(
            cfg.remote("sock").expect("socket").endpoint,
            Endpoint::Unix("/x/incus.socket".into())
        );
        let err = cfg.remote("nope").expect_err("unknown");
        assert!(err.to_string().contains("known: both, inc, sock"), "{err}");
    }

    #[test]
    fn a_missing_identity_is_generated_with_a_private_key() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("conf");
        let cfg = ClientConfig::load_family(ClientFamily::Incus, &conf).expect("empty");
        let (crt, key) = cfg.ensure_client_identity().expect("generated");
        assert_eq!(crt, conf.join("client.crt"), "where incus would put it");
        assert_eq!(
            std::fs::metadata(&key).expect("key").permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(&conf).expect("dir").permissions().mode() & 0o777,
            0o700
        );
        assert!(read_certificate(&crt).is_ok());
        assert_eq!(cfg.ensure_client_identity().expect("kept"), (crt, key));
    }

    proptest::proptest! {
        /// No config.yml, however broken, makes reading it panic.
        #[test]
        fn any_config_text_is_handled(text in ".{0,200}", yaml in "(default-remote: [a-z]{0,5}\n)?remotes:\n(  [a-z]{1,5}: \\{addr: '[a-z:/.0-9]{0,20}'\\}\n){0,3}") {
            let _ = parse_config(&text);
            let _ = parse_config(&yaml);
        }

        /// Any address a user types is parsed or refused, never a panic.
        #[test]
        fn any_address_is_handled(addr in ".{0,60}") {
            let _ = parse_addr(&addr);
        }
    }

    #[test]
    fn empty_and_broken_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("config.yml"), "").expect("write");
        assert!(ClientConfig::load(dir.path()).is_ok());
        std::fs::write(dir.path().join("config.yml"), "remotes: [1, 2").expect("write");
        assert!(ClientConfig::load(dir.path()).is_err());
    }
}
