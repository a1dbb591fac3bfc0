//! A fake pinentry program that writes down every line certauth sends it and answers each
//! `GETPIN` with a fixed PIN: what a PIN dialog was told, and whether one was opened at all.

use std::path::PathBuf;

pub struct RecordingPinentry {
    program: PathBuf,
    record: PathBuf,
    _dir: tempfile::TempDir,
}

impl RecordingPinentry {
    /// A pinentry answering `pin` (digits only: it is written into a shell script).
    pub fn new(pin: &str) -> Self {
        use std::os::unix::fs::PermissionsExt;

        assert!(pin.bytes().all(|b| b.is_ascii_digit()), "{pin}");
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("received");
        let program = dir.path().join("pinentry-recording");
        let script = format!(
            "#!/bin/sh\necho 'OK fake pinentry'\nwhile IFS= read -r line; do\n  printf '%s\\n' \"$line\" >> '{record}'\n  case \"$line\" in\n    GETPIN*) echo 'D {pin}'; echo OK ;;\n    BYE*) echo OK; exit 0 ;;\n    *) echo OK ;;\n  esac\ndone\n",
            record = record.display()
        );
        std::fs::write(&program, script).unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self {
            program,
            record,
            _dir: dir,
        }
    }

    /// The `--pin` argument that uses it.
    pub fn source(&self) -> String {
        format!("pinentry:{}", self.program.display())
    }

    /// Every line it received, as bytes (escape sequences included, if any were sent).
    pub fn received(&self) -> Vec<u8> {
        std::fs::read(&self.record).unwrap_or_default()
    }

    /// How many times it was asked for a PIN.
    pub fn pins_asked(&self) -> usize {
        String::from_utf8_lossy(&self.received())
            .lines()
            .filter(|l| l.starts_with("GETPIN"))
            .count()
    }
}
