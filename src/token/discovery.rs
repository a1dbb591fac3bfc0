//! Which PKCS#11 modules to load, in the Linux convention: the p11-kit module registry, then
//! certauth's config file, `CERTAUTH_PKCS11_MODULE`, and `--module` on the command line.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// Replaces the p11-kit registry directories (colon-separated), for tests and unusual systems.
pub const P11KIT_DIRS_ENV: &str = "CERTAUTH_P11KIT_MODULE_DIRS";
/// Extra module paths (colon-separated).
pub const MODULE_ENV: &str = "CERTAUTH_PKCS11_MODULE";
/// The program name p11-kit's `enable-in:`/`disable-in:` lists are matched against.
pub const PROGRAM_NAME: &str = "certauth";

/// p11-kit's package, system and user registry directories, in its own precedence order.
const SYSTEM_REGISTRY: &[&str] = &["/usr/share/p11-kit/modules", "/etc/pkcs11/modules"];
/// Where p11-kit resolves a relative `module:` path.
const P11KIT_MODULE_PATHS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/pkcs11",
    "/usr/lib/aarch64-linux-gnu/pkcs11",
    "/usr/lib64/pkcs11",
    "/usr/lib/pkcs11",
];

/// Where a module came from, so a failure can be traced to the setting that named it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum ModuleOrigin {
    /// A p11-kit `.module` file.
    P11Kit { file: PathBuf },
    /// certauth's config file.
    Config { file: PathBuf },
    /// `CERTAUTH_PKCS11_MODULE`.
    Environment,
    /// `--module` on the command line.
    CommandLine,
}

impl std::fmt::Display for ModuleOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::P11Kit { file } => write!(f, "p11-kit {}", file.display()),
            Self::Config { file } => write!(f, "config {}", file.display()),
            Self::Environment => write!(f, "{MODULE_ENV}"),
            Self::CommandLine => f.write_str("--module"),
        }
    }
}

/// A module to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleCandidate {
    pub path: PathBuf,
    pub origin: ModuleOrigin,
    /// p11-kit's `critical: yes`: its failure fails the whole command.
    pub critical: bool,
}

/// A registry entry that was skipped, and why; shown with `-v`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedModule {
    pub file: PathBuf,
    pub reason: String,
}

/// What to look at.
#[derive(Debug, Clone, Default)]
pub struct DiscoveryOptions {
    /// Registry directories; `None` means p11-kit's system and user directories (or
    /// `CERTAUTH_P11KIT_MODULE_DIRS`).
    pub registry_dirs: Option<Vec<PathBuf>>,
    /// Skip the p11-kit registry entirely.
    pub no_registry: bool,
    /// Module paths from certauth's config file, and that file.
    pub config_modules: Vec<PathBuf>,
    pub config_file: Option<PathBuf>,
    /// `--module` paths.
    pub command_line: Vec<PathBuf>,
}

/// The modules to load, each once, in order: registry, config, environment, command line.
#[derive(Debug, Clone, Default)]
pub struct Discovered {
    pub modules: Vec<ModuleCandidate>,
    pub skipped: Vec<SkippedModule>,
}

/// Collects module candidates from every source.
pub fn discover(options: &DiscoveryOptions) -> Discovered {
    let mut found = Discovered::default();
    if !options.no_registry {
        let dirs = options
            .registry_dirs
            .clone()
            .unwrap_or_else(default_registry_dirs);
        for dir in dirs {
            read_registry_dir(&dir, &mut found);
        }
    }
    let config_origin = ModuleOrigin::Config {
        file: options.config_file.clone().unwrap_or_default(),
    };
    for path in &options.config_modules {
        push(&mut found, path.clone(), config_origin.clone(), false);
    }
    if let Some(paths) = std::env::var_os(MODULE_ENV) {
        for path in std::env::split_paths(&paths).filter(|p| !p.as_os_str().is_empty()) {
            push(&mut found, path, ModuleOrigin::Environment, false);
        }
    }
    for path in &options.command_line {
        push(&mut found, path.clone(), ModuleOrigin::CommandLine, false);
    }
    found
}

fn push(found: &mut Discovered, path: PathBuf, origin: ModuleOrigin, critical: bool) {
    // The same library loaded twice would share one C_Initialize: keep the first mention.
    let key = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_owned());
    let wanted = key(&path);
    if !found.modules.iter().any(|c| key(&c.path) == wanted) {
        found.modules.push(ModuleCandidate {
            path,
            origin,
            critical,
        });
    }
}

fn default_registry_dirs() -> Vec<PathBuf> {
    if let Some(dirs) = std::env::var_os(P11KIT_DIRS_ENV) {
        return std::env::split_paths(&dirs)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
    }
    let mut dirs: Vec<PathBuf> = SYSTEM_REGISTRY.iter().map(PathBuf::from).collect();
    if let Some(home) = directories::BaseDirs::new() {
        dirs.push(home.config_dir().join("pkcs11").join("modules"));
    }
    dirs
}

fn read_registry_dir(dir: &Path, found: &mut Discovered) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "module"))
        .collect();
    files.sort();
    for file in files {
        match std::fs::read_to_string(&file) {
            Ok(text) => match parse_module_file(&text) {
                Ok(entry) => match entry.usable_by(PROGRAM_NAME) {
                    Ok(()) => push(
                        found,
                        resolve_module_path(&entry.module),
                        ModuleOrigin::P11Kit { file: file.clone() },
                        entry.critical,
                    ),
                    Err(reason) => found.skipped.push(SkippedModule { file, reason }),
                },
                Err(reason) => found.skipped.push(SkippedModule { file, reason }),
            },
            Err(e) => found.skipped.push(SkippedModule {
                file,
                reason: format!("unreadable: {e}"),
            }),
        }
    }
}

/// The keys of a p11-kit `.module` file that certauth honours.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModuleFile {
    pub module: String,
    pub enable_in: Option<Vec<String>>,
    pub disable_in: Option<Vec<String>>,
    pub critical: bool,
    /// A trust-policy module holds trust anchors, not sign-in tokens.
    pub trust_policy: bool,
}

impl ModuleFile {
    /// Whether p11-kit would load it into `program`; if not, why.
    pub fn usable_by(&self, program: &str) -> Result<(), String> {
        if let Some(list) = &self.enable_in {
            if !list.iter().any(|p| p == program) {
                return Err(format!("enable-in does not name {program}"));
            }
        }
        if let Some(list) = &self.disable_in {
            if list.iter().any(|p| p == program) {
                return Err(format!("disable-in names {program}"));
            }
        }
        if self.trust_policy {
            return Err("a trust-policy module (trust anchors, not tokens)".into());
        }
        Ok(())
    }
}

/// Parses p11-kit's `key: value` module file format.
pub fn parse_module_file(text: &str) -> Result<ModuleFile, String> {
    let mut file = ModuleFile::default();
    let mut module = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(format!("line `{line}` is not `key: value`"));
        };
        let value = value.trim();
        let list = || {
            value
                .split([',', ' ', '\t'])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        match key.trim() {
            "module" => module = Some(value.to_owned()),
            "enable-in" => file.enable_in = Some(list()),
            "disable-in" => file.disable_in = Some(list()),
            "critical" => file.critical = is_yes(value),
            "trust-policy" => file.trust_policy = is_yes(value),
            _ => {}
        }
    }
    file.module = module.ok_or("no `module:` key")?;
    Ok(file)
}

fn is_yes(value: &str) -> bool {
    matches!(value.to_ascii_lowercase().as_str(), "yes" | "true" | "1")
}

/// A relative `module:` is looked up where p11-kit keeps modules.
fn resolve_module_path(module: &str) -> PathBuf {
    let path = PathBuf::from(module);
    if path.is_absolute() {
        return path;
    }
    P11KIT_MODULE_PATHS
        .iter()
        .map(|dir| Path::new(dir).join(&path))
        .find(|candidate| candidate.exists())
        .unwrap_or_else(|| Path::new(P11KIT_MODULE_PATHS[0]).join(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_module_file() {
        let file = parse_module_file(
            "# comment\nmodule: opensc-pkcs11.so\nenable-in: certauth, firefox\ncritical: yes\n",
        )
        .unwrap();
        assert_eq!(file.module, "opensc-pkcs11.so");
        assert_eq!(
            file.enable_in,
            Some(vec!["certauth".into(), "firefox".into()])
        );
        assert!(file.critical);
        assert_eq!(file.usable_by("certauth"), Ok(()));
        assert_eq!(
            file.usable_by("other"),
            Err("enable-in does not name other".into())
        );
    }

    #[test]
    fn disable_in_and_trust_policy_skip_a_module() {
        let disabled = parse_module_file("module: x.so\ndisable-in: certauth\n").unwrap();
        assert_eq!(
            disabled.usable_by("certauth"),
            Err("disable-in names certauth".into())
        );
        let trust = parse_module_file("module: p11-kit-trust.so\ntrust-policy: yes\n").unwrap();
        assert!(trust.usable_by("certauth").is_err());
    }

    #[test]
    fn a_file_without_module_is_refused() {
        assert_eq!(
            parse_module_file("critical: no\n"),
            Err("no `module:` key".into())
        );
        assert!(parse_module_file("garbage\n").is_err());
    }
}
